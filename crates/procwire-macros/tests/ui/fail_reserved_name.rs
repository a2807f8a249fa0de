use procwire_remoting::remote;

#[remote]
pub trait Bad {
    async fn new(&self) -> u32;
}

fn main() {}
