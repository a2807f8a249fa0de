//! Any bytes as the arguments of a `#[remote]` method, in both formats (postcard: a tuple
//! in order; JSON: an object by name), through the generated server dispatch, and as the
//! constructor arguments of a client-activated type through `Registry::activate`.
//!
//! Decoding never panics and fails only as `BadArguments`; whatever decodes runs, its
//! result decodes as the declared type, and the arguments it accepted, encoded again by
//! the client's rules, dispatch to the same result.
#![no_main]

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use procwire_remoting::wire::{decode_value, encode_value};
use procwire_remoting::{
    remote, Format, Lease, RegistryBuilder, RemoteError, RemoteErrorKind, ServiceObject,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    x: i64,
    y: u8,
    label: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Shape {
    Empty,
    Circle(u32),
    Rect { w: u16, h: u16 },
    Path(Vec<Point>),
}

/// The JSON arguments of `scalars`, by name.
#[derive(Serialize)]
struct ScalarArgs {
    a: u64,
    b: i32,
    flag: bool,
    c: char,
    big: u128,
}

type Scalars = (u64, i32, bool, char, u128);
type Texts = (String, Vec<String>, Option<String>);
type Nested = (Point, Shape, Vec<u8>, BTreeMap<String, u16>);

#[remote]
pub trait Echo {
    async fn scalars(&self, a: u64, b: i32, flag: bool, c: char, big: u128) -> Scalars;
    async fn texts(&self, name: String, tags: Vec<String>, note: Option<String>) -> Texts;
    async fn nested(
        &self,
        point: Point,
        shape: Shape,
        bytes: Vec<u8>,
        map: BTreeMap<String, u16>,
    ) -> Nested;
    async fn nothing(&self) -> u8;
    async fn fallible(&self, text: String, n: u32) -> Result<(String, u32), RemoteError>;
}

struct Impl;

impl Echo for Impl {
    async fn scalars(&self, a: u64, b: i32, flag: bool, c: char, big: u128) -> Scalars {
        (a, b, flag, c, big)
    }
    async fn texts(&self, name: String, tags: Vec<String>, note: Option<String>) -> Texts {
        (name, tags, note)
    }
    async fn nested(
        &self,
        point: Point,
        shape: Shape,
        bytes: Vec<u8>,
        map: BTreeMap<String, u16>,
    ) -> Nested {
        (point, shape, bytes, map)
    }
    async fn nothing(&self) -> u8 {
        7
    }
    async fn fallible(&self, text: String, n: u32) -> Result<(String, u32), RemoteError> {
        if n % 2 == 0 {
            Ok((text, n))
        } else {
            Err(RemoteError::application(text))
        }
    }
}

/// Runs a call to its end: the methods never wait.
fn run<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("the call waited"),
    }
}

fn call(method: &str, format: Format, args: &[u8]) -> Result<Vec<u8>, RemoteError> {
    let server = Arc::new(EchoServer::new(Impl));
    let call = server.dispatch(method, format, args)?;
    run(call)
}

/// Decodes the result as `T`, encodes the arguments again as a client would (`by_name`
/// for JSON), and checks that they dispatch to the same result.
fn round_trip<T, J, F>(method: &str, format: Format, result: &[u8], by_name: F)
where
    F: Fn(&T) -> J,
    J: Serialize,
    T: serde::de::DeserializeOwned + Serialize + PartialEq + std::fmt::Debug,
{
    let value: T = decode_value(format, result).expect("a result decodes as its type");
    let again = match format {
        // The echoing methods return their arguments; `nothing` takes none.
        Format::Binary if method == "nothing" => encode_value(format, &()),
        Format::Binary => encode_value(format, &value),
        Format::Json => encode_value(format, &by_name(&value)),
    }
    .expect("accepted arguments encode");
    let second = call(method, format, &again).expect("re-encoded arguments dispatch");
    assert_eq!(
        second, result,
        "{method}: the same arguments gave another result"
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, args)) = data.split_first() else {
        return;
    };
    let format = if selector & 0x80 == 0 {
        Format::Binary
    } else {
        Format::Json
    };
    let methods = [
        "scalars", "texts", "nested", "nothing", "fallible", "activate",
    ];
    let method = methods[usize::from(selector & 0x7f) % methods.len()];

    if method == "activate" {
        let registry = RegistryBuilder::new("App")
            .client_activated(
                "Thing",
                Lease::new(Duration::from_secs(60), Duration::from_secs(60)),
                |(name, shape): (String, Shape)| {
                    let _ = (name, shape);
                    Ok(EchoServer::new(Impl))
                },
            )
            .build();
        match registry.activate("App/Thing", format, args, Instant::now()) {
            Ok(id) => assert!(registry.release(id)),
            Err(e) => assert_eq!(e.kind, RemoteErrorKind::BadArguments, "{e}"),
        }
        return;
    }

    let result = match call(method, format, args) {
        Ok(result) => result,
        Err(e) if method == "fallible" && e.kind == RemoteErrorKind::Application => return,
        Err(e) => {
            assert_eq!(e.kind, RemoteErrorKind::BadArguments, "{e}");
            return;
        }
    };
    match method {
        // (A struct, not `json!`: a `Value` cannot hold a u128 over u64::MAX.)
        "scalars" => {
            round_trip::<Scalars, _, _>(method, format, &result, |(a, b, flag, c, big)| {
                ScalarArgs {
                    a: *a,
                    b: *b,
                    flag: *flag,
                    c: *c,
                    big: *big,
                }
            })
        }
        "texts" => round_trip::<Texts, _, _>(
            method,
            format,
            &result,
            |(name, tags, note)| json!({ "name": name, "tags": tags, "note": note }),
        ),
        "nested" => round_trip::<Nested, _, _>(
            method,
            format,
            &result,
            |(point, shape, bytes, map)| json!({ "point": point, "shape": shape, "bytes": bytes, "map": map }),
        ),
        "nothing" => round_trip::<u8, _, _>(method, format, &result, |_| json!({})),
        _ => round_trip::<(String, u32), _, _>(
            method,
            format,
            &result,
            |(text, n)| json!({ "text": text, "n": n }),
        ),
    }
});
