"""Code generated from proto/sessionstore/v1/session_store.proto by `npm run generate`."""
