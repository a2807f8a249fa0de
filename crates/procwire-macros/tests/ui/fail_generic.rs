use procwire_remoting::remote;

#[remote]
pub trait Bad {
    async fn any<T>(&self, value: T) -> u32;
}

fn main() {}
