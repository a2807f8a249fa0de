//! Properties of the public types that users rely on without thinking about them.

use std::fmt::Debug;

fn send_sync_debug<T: Send + Sync + Debug>() {}

#[test]
fn public_types_are_send_sync_and_debug() {
    send_sync_debug::<procwire::name::Name>();
    send_sync_debug::<procwire::name::NameError>();
    send_sync_debug::<procwire::security::AccessList>();
    send_sync_debug::<procwire::security::PeerCredentials>();
    send_sync_debug::<procwire::wire::Request>();
    send_sync_debug::<procwire::wire::Response>();
    send_sync_debug::<procwire::wire::ProtocolError>();
    send_sync_debug::<procwire::pipe::PipeOptions>();
    send_sync_debug::<procwire::pipe::ClientOptions>();
    send_sync_debug::<procwire::pipe::PipeServer>();
    send_sync_debug::<procwire::pipe::PipeConnection>();
    send_sync_debug::<procwire::pipe::PipeError>();
    send_sync_debug::<procwire::registry::Listing>();
    send_sync_debug::<procwire::registry::ObjectKind>();
    send_sync_debug::<procwire::wire::RegistryEntry>();
    send_sync_debug::<procwire::mailslot::MailslotWriter>();
    send_sync_debug::<procwire::mailslot::MailslotServer>();
    #[cfg(feature = "tokio")]
    {
        send_sync_debug::<procwire::pipe::tokio::PipeServer>();
        send_sync_debug::<procwire::pipe::tokio::PipeConnection>();
    }
}

#[test]
fn existence_follows_the_server() {
    let name = format!("api-exists-{}", std::process::id());
    assert!(!procwire::pipe::exists(name.as_str()).unwrap());
    let server = procwire::pipe::PipeServer::create(name.as_str()).unwrap();
    assert!(procwire::pipe::exists(name.as_str()).unwrap());
    assert!(procwire::pipe::list(procwire::name::Namespace::Local)
        .unwrap()
        .contains(&name));
    drop(server);
    assert!(!procwire::pipe::exists(name.as_str()).unwrap());
}
