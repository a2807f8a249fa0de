use procwire_remoting::{remote, RemoteError};

#[derive(serde::Serialize, serde::Deserialize, Debug, Clone)]
pub struct Point {
    pub x: i32,
    pub y: i32,
}

/// A service with every kind of method.
#[remote]
pub trait Geometry {
    /// No arguments, no result.
    async fn reset(&self);
    /// Several arguments, a user type.
    async fn shift(&self, p: Point, dx: i32, dy: i32) -> Point;
    /// Errors of its own.
    async fn checked(&self, n: u32) -> Result<u32, RemoteError>;
    /// Collections.
    async fn sum(&self, values: Vec<i64>) -> i64;
}

struct Impl;

impl Geometry for Impl {
    async fn reset(&self) {}
    async fn shift(&self, p: Point, dx: i32, dy: i32) -> Point {
        Point { x: p.x + dx, y: p.y + dy }
    }
    async fn checked(&self, n: u32) -> Result<u32, RemoteError> {
        n.checked_mul(2).ok_or_else(|| RemoteError::application("overflow"))
    }
    async fn sum(&self, values: Vec<i64>) -> i64 {
        values.iter().sum()
    }
}

async fn use_client(c: &GeometryClient) -> Result<(), procwire_remoting::RemotingError> {
    c.reset().await?;
    let p: Point = c.shift(Point { x: 1, y: 2 }, 3, 4).await?;
    let n: u32 = c.checked(2).await?;
    let s: i64 = c.sum(vec![1, 2]).await?;
    let _ = (p, n, s);
    Ok(())
}

fn use_blocking(c: &GeometryBlockingClient) -> Result<u32, procwire_remoting::RemotingError> {
    c.checked(1)
}

fn main() {
    let _server = GeometryServer::new(Impl);
    let d = <GeometryServer<Impl> as procwire_remoting::ServiceObject>::describe();
    assert_eq!(d.methods.len(), 4);
    assert_eq!(d.methods[1].args[0].ty, "Point");
    let _ = use_client;
    let _ = use_blocking;
}
