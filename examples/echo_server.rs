//! The conformance target: a blocking echo server, one thread per connection
//!
//! ```sh
//! cargo run --release --example echo_server -- [--addr 127.0.0.1:9001] [--token T] [--first-message-auth]
//! ```
//!
//! Prints `listening on <addr>` once it accepts connections. Echoes every text and
//! binary message; pings are answered and the close handshake completed by the
//! connection. With `--token T` the handshake must carry `T` by one of:
//! `Authorization: Bearer T`, `Authorization: Basic` of `token:T`, query `token=T` or
//! `access_token=T`, cookie `token=T`, `Sec-WebSocket-Protocol: access_token, T`;
//! otherwise `401` with Bearer and Basic challenges. With `--first-message-auth` a
//! handshake without a credential is accepted and the first message must be the text
//! `T` within 10 s (close 1008 otherwise).

mod common;

use std::io::{self, Write};
use std::net::TcpListener;
use std::sync::Arc;

use wsgate::Config;

struct Args {
    addr: String,
    token: Option<String>,
    first_message_auth: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        addr: "127.0.0.1:9001".into(),
        token: None,
        first_message_auth: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--addr" => args.addr = it.next().ok_or("--addr needs a value")?,
            "--token" => args.token = Some(it.next().ok_or("--token needs a value")?),
            "--first-message-auth" => args.first_message_auth = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if args.first_message_auth && args.token.is_none() {
        return Err("--first-message-auth needs --token".into());
    }
    Ok(args)
}

fn main() -> io::Result<()> {
    let args = parse_args().unwrap_or_else(|e| {
        eprintln!("{e}\nusage: echo_server [--addr HOST:PORT] [--token T] [--first-message-auth]");
        std::process::exit(2);
    });
    let listener = TcpListener::bind(&args.addr)?;
    println!("listening on {}", listener.local_addr()?);
    io::stdout().flush()?;
    let args = Arc::new(args);
    let config = Arc::new(Config::default());
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                eprintln!("accept: {e}");
                continue;
            }
        };
        let (args, config) = (Arc::clone(&args), Arc::clone(&config));
        std::thread::spawn(move || {
            let token = args.token.as_deref();
            if let Err(e) = common::serve_blocking(stream, &config, token, args.first_message_auth)
            {
                eprintln!("connection: {e}");
            }
        });
    }
    Ok(())
}
