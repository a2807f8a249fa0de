use procwire_remoting::remote;

#[remote]
pub trait Bad {
    async fn greet(&self, name: &str) -> String;
}

fn main() {}
