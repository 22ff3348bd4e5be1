//! `covenant-adapter`: the HTTP/JSON gateway the Java, Python and Node
//! drivers use (`cql-adapter`, see `specs/adapter-http-api.md`) and the web
//! block explorer (`cql-explorer`). Handlers parse, call a backend, and map
//! the result; routing and retries live in `covenant-client`.
#![warn(missing_docs, unreachable_pub)]

pub use covenant_core as core;
