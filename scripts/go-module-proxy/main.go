// Command go-module-proxy lays out a Go module as a module proxy serves it (GOPROXY=file://DIR),
// with the zip the go command downloads made by golang.org/x/mod/zip, which applies the rules
// the proxy does (it refuses files a module zip may not hold). test/interop/go-module.test.ts
// uses it to `go get` the Go client as it will be published:
//
//	go run . -dir ../../clients/go -module github.com/sessionstore/sessionstore/clients/go -version v0.1.0 -out DIR
package main

import (
	"encoding/json"
	"flag"
	"log"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/zip"
)

func main() {
	dir := flag.String("dir", "", "the module's directory (where its go.mod is)")
	path := flag.String("module", "", "the module path")
	version := flag.String("version", "v0.1.0", "the version to serve")
	out := flag.String("out", "", "the proxy's directory")
	flag.Parse()
	if *dir == "" || *path == "" || *out == "" {
		flag.Usage()
		os.Exit(2)
	}
	if err := publish(module.Version{Path: *path, Version: *version}, *dir, *out); err != nil {
		log.Fatal(err)
	}
}

// publish writes <module>/@v/list, <version>.info, .mod and .zip under out.
func publish(version module.Version, dir, out string) error {
	escaped, err := module.EscapePath(version.Path)
	if err != nil {
		return err
	}
	versions := filepath.Join(out, escaped, "@v")
	if err := os.MkdirAll(versions, 0o755); err != nil {
		return err
	}
	base := filepath.Join(versions, version.Version)
	archive, err := os.Create(base + ".zip")
	if err != nil {
		return err
	}
	if err := zip.CreateFromDir(archive, version, dir); err != nil {
		archive.Close()
		return err
	}
	if err := archive.Close(); err != nil {
		return err
	}
	goMod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return err
	}
	info, err := json.Marshal(map[string]any{"Version": version.Version, "Time": time.Now().UTC()})
	if err != nil {
		return err
	}
	for name, data := range map[string][]byte{
		base + ".mod":                   goMod,
		base + ".info":                  info,
		filepath.Join(versions, "list"): []byte(version.Version + "\n"),
	} {
		if err := os.WriteFile(name, data, 0o644); err != nil {
			return err
		}
	}
	return nil
}
