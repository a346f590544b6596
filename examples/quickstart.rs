//! A blocking server that lets in only clients presenting a Bearer token
//!
//! ```text
//! cargo run --example quickstart -- [--addr 127.0.0.1:9001] [--token let-me-in]
//! ```
//!
//! Each connection's handshake is answered with `101` (right token), `401` with a
//! Bearer challenge (no token, or a wrong one) or a `4xx` for a broken request. The
//! message layer is not wired in here: after the `101` the server says who connected
//! and closes the socket.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

use wsgate::{Config, Decision, Outcome, Response, ServerHandshake, auth};

fn main() -> std::io::Result<()> {
    let mut addr = "127.0.0.1:9001".to_string();
    let mut token = "let-me-in".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--addr", Some(v)) => addr = v,
            ("--token", Some(v)) => token = v,
            _ => {
                eprintln!("usage: quickstart [--addr HOST:PORT] [--token TOKEN]");
                std::process::exit(2);
            }
        }
    }
    let listener = TcpListener::bind(&addr)?;
    println!("listening on {}", listener.local_addr()?);
    let config = Config::default();
    for stream in listener.incoming() {
        if let Err(e) = serve(stream?, &config, token.as_bytes()) {
            eprintln!("connection error: {e}");
        }
    }
    Ok(())
}

fn serve(mut stream: TcpStream, config: &Config, token: &[u8]) -> std::io::Result<()> {
    let peer = stream.peer_addr()?;
    let mut handshake = ServerHandshake::new(config);
    let mut buf = [0u8; 4096];
    let mut out = Vec::new();
    let outcome = loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(()); // gone before finishing the request
        }
        let step = handshake.handle_input(&buf[..n], &mut out, |req| match auth::bearer(req) {
            Ok(Some(t)) if t.ct_eq(token) => Decision::accept(req.path().to_owned()),
            Ok(Some(_)) | Err(_) => {
                Decision::reject(Response::unauthorized_bearer("quickstart").invalid_token())
            }
            Ok(None) => Decision::reject(Response::unauthorized_bearer("quickstart")),
        });
        match step {
            Ok(None) => continue,
            Ok(Some(outcome)) => break Some(outcome),
            Err(e) => {
                println!("{peer}: refused: {e}");
                break None;
            }
        }
    };
    stream.write_all(&out)?;
    match outcome {
        Some(Outcome::Accepted(accepted)) => println!("{peer}: accepted on {}", accepted.data()),
        Some(Outcome::Rejected(r)) => println!("{peer}: answered {}", r.status()),
        None => {}
    }
    Ok(())
}
