//! The echo server on tokio: the same state machine, no adapter crate
//!
//! ```sh
//! cargo run --example tokio_echo -- [--addr 127.0.0.1:9002] [--token T] [--handshake-timeout SECS]
//! ```
//!
//! wsgate does no I/O, so the async version is the blocking loop with `.await` on
//! the socket calls. A single-threaded runtime serves every connection as a task.
//! Each task waits on the socket's readiness and on the connection's deadline at
//! once, and reads straight into the connection only when bytes are there: an idle
//! connection holds no read buffer, and a client that stalls mid-request is answered
//! `408` at the handshake deadline and costs nothing after it.

mod common;

use std::io::ErrorKind;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};
use wsgate::{Accepted, Config, Instant, Outcome, ServerConnection, ServerHandshake};

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let mut addr = "127.0.0.1:9002".to_string();
    let mut token = None;
    let mut config = Config::builder();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--addr", Some(v)) => addr = v,
            ("--token", Some(v)) => token = Some(v),
            ("--handshake-timeout", Some(v)) if v.parse::<f64>().is_ok_and(|s| s > 0.0) => {
                let secs = v.parse::<f64>().unwrap_or_default();
                config = config.handshake_timeout(std::time::Duration::from_secs_f64(secs));
            }
            _ => {
                eprintln!(
                    "usage: tokio_echo [--addr HOST:PORT] [--token T] [--handshake-timeout SECS]"
                );
                std::process::exit(2);
            }
        }
    }
    let config: &'static Config = Box::leak(Box::new(config.build().expect("valid limits")));
    // A backlog of 1024 rather than the default 128: bursts of connections are
    // queued by the kernel, not dropped and retried a second later.
    let addr: std::net::SocketAddr = addr.parse().expect("--addr HOST:PORT");
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    let listener = socket.listen(1024)?;
    println!("listening on {}", listener.local_addr()?);
    let token: Option<&'static str> = token.map(|t| &*t.leak());
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(async move {
            if let Err(e) = serve(stream, config, token).await {
                eprintln!("connection: {e}");
            }
        });
    }
}

/// Wait until the socket is readable or `deadline` passes; `true` when readable
async fn readable_until(stream: &TcpStream, deadline: Option<Instant>) -> std::io::Result<bool> {
    match deadline {
        Some(d) => match tokio::time::timeout(common::until(d), stream.readable()).await {
            Ok(ready) => ready.map(|()| true),
            Err(_) => Ok(false),
        },
        None => stream.readable().await.map(|()| true),
    }
}

async fn serve(mut stream: TcpStream, config: &Config, token: Option<&str>) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut out = Vec::new();

    // The request head is small: a stack buffer, held only while a read is under way.
    let mut handshake = ServerHandshake::new(config, common::now());
    let accepted = loop {
        let step = if readable_until(&stream, handshake.poll_timeout()).await? {
            let mut buf = [0u8; 4096];
            match stream.try_read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => handshake
                    .handle_input(&buf[..n], &mut out, |req| common::decide(req, token, false)),
                Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        } else {
            handshake
                .handle_timeout(common::now(), &mut out)
                .map(|()| None)
        };
        stream.write_all(&out).await?;
        out.clear();
        match step {
            Ok(None) => {}
            Ok(Some(Outcome::Accepted(accepted))) => break accepted,
            Ok(Some(Outcome::Rejected(_))) | Err(_) => return Ok(()),
        }
    };

    // The connection's state lives on the heap only once the handshake is accepted:
    // a task stalled mid-request holds the handshake's state alone.
    Box::pin(echo(stream, config, accepted, token)).await
}

async fn echo(
    stream: TcpStream,
    config: &Config,
    accepted: Accepted<common::Carrier>,
    token: Option<&str>,
) -> std::io::Result<()> {
    let mut conn = ServerConnection::from_accepted(accepted, config, common::now());
    loop {
        common::pump(&mut conn, token);
        // Straight from the connection's queue to the socket.
        while conn.sender().pending_transmit() > 0 {
            stream.writable().await?;
            let tx = conn.sender();
            match stream.try_write(tx.transmit_front()) {
                Ok(n) => tx.consume_transmit(n),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        if conn.is_closed() {
            return Ok(());
        }
        if !readable_until(&stream, conn.poll_timeout()).await? {
            conn.handle_timeout(common::now());
            continue;
        }
        match stream.try_read(conn.input_buffer()) {
            Ok(0) => return Ok(()),
            Ok(n) => conn.handle_read(n),
            Err(e) if e.kind() == ErrorKind::WouldBlock => conn.handle_read(0),
            Err(e) => return Err(e),
        }
    }
}
