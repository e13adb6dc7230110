module sessionstore/scripts/go-module-proxy

go 1.26.0

require golang.org/x/mod v0.33.0
