//! Listening sockets for the local endpoints.

use std::net::{Ipv4Addr, SocketAddr};

use axum::serve::{ListenerExt, TapIo};
use tokio::net::{TcpListener, TcpStream};

/// A loopback listener whose connections have `TCP_NODELAY` set.
pub(crate) type Listener = TapIo<TcpListener, fn(&mut TcpStream)>;

/// Sends small answers at once. Without it, an answer written as headers and then a body
/// waits for the peer's delayed ACK (Nagle's algorithm), about 40 ms on Linux, where the AWS
/// endpoint it stands for answers at once.
pub(crate) fn no_delay(socket: &mut TcpStream) {
    if let Err(e) = socket.set_nodelay(true) {
        tracing::debug!(error = %e, "could not set TCP_NODELAY");
    }
}

/// Binds 127.0.0.1:`port` (0 picks a free port) for `what`, with [`no_delay`] connections.
pub(crate) async fn bind(what: &'static str, port: u16) -> crate::Result<(Listener, SocketAddr)> {
    let bind = |source| crate::Error::Bind { what, port, source };
    let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await.map_err(bind)?;
    let addr = listener.local_addr().map_err(bind)?;
    Ok((listener.tap_io(no_delay as fn(&mut TcpStream)), addr))
}
