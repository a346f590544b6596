//! The echo server on tokio: the same state machine, no adapter crate
//!
//! ```sh
//! cargo run --example tokio_echo -- [--addr 127.0.0.1:9002] [--token T]
//! ```
//!
//! wsgate does no I/O, so the async version is the blocking loop with `.await` on
//! the socket calls. A single-threaded runtime serves every connection as a task.

mod common;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use wsgate::{Config, Outcome, ServerConnection, ServerHandshake};

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let mut addr = "127.0.0.1:9002".to_string();
    let mut token = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--addr", Some(v)) => addr = v,
            ("--token", Some(v)) => token = Some(v),
            _ => {
                eprintln!("usage: tokio_echo [--addr HOST:PORT] [--token T]");
                std::process::exit(2);
            }
        }
    }
    let listener = TcpListener::bind(&addr).await?;
    println!("listening on {}", listener.local_addr()?);
    let token: Option<&'static str> = token.map(|t| &*t.leak());
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(async move {
            if let Err(e) = serve(stream, token).await {
                eprintln!("connection: {e}");
            }
        });
    }
}

async fn serve(mut stream: TcpStream, token: Option<&str>) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let config = Config::default();
    let mut buf = vec![0u8; 64 * 1024];
    let mut out = Vec::new();

    let mut handshake = ServerHandshake::new(&config);
    let accepted = loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        let step =
            handshake.handle_input(&buf[..n], &mut out, |req| common::decide(req, token, false));
        stream.write_all(&out).await?;
        out.clear();
        match step {
            Ok(None) => {}
            Ok(Some(Outcome::Accepted(accepted))) => break accepted,
            Ok(Some(Outcome::Rejected(_))) | Err(_) => return Ok(()),
        }
    };

    let mut conn = ServerConnection::from_accepted(accepted, &config);
    let mut scratch = Vec::new();
    loop {
        common::pump(&mut conn, token, &mut scratch);
        conn.poll_transmit(&mut out);
        stream.write_all(&out).await?;
        out.clear();
        if conn.is_closed() {
            return Ok(());
        }
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        // An error is also returned by the next poll_event, which queues its close.
        let _ = conn.handle_input(&buf[..n]);
    }
}
