//! A real client nobody here wrote: tungstenite against the examples' blocking server
//! on 127.0.0.1, over every carrier a program can use

#[path = "../examples/common/mod.rs"]
mod common;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use tungstenite::client::IntoClientRequest;
use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::{Bytes, Error as WsError, Message};
use wsgate::Config;

const TOKEN: &str = "s3cr3t-T0ken";

/// A server that serves `n` connections, then stops
fn server(n: usize, first_message_auth: bool) -> (SocketAddr, thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = thread::spawn(move || {
        let config = Config::default();
        for stream in listener.incoming().take(n) {
            common::serve_blocking(stream.unwrap(), &config, Some(TOKEN), first_message_auth)
                .unwrap();
        }
    });
    (addr, handle)
}

fn connect(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<tungstenite::WebSocket<TcpStream>, WsError> {
    let mut request = format!("ws://{addr}{path}").into_client_request().unwrap();
    for (name, value) in headers {
        let name = tungstenite::http::HeaderName::from_bytes(name.as_bytes()).unwrap();
        request.headers_mut().insert(name, value.parse().unwrap());
    }
    let stream = TcpStream::connect(addr).unwrap();
    match tungstenite::client(request, stream) {
        Ok((ws, _response)) => Ok(ws),
        Err(tungstenite::HandshakeError::Failure(e)) => Err(e),
        Err(tungstenite::HandshakeError::Interrupted(_)) => unreachable!("blocking stream"),
    }
}

fn echo_and_close(mut ws: tungstenite::WebSocket<TcpStream>) {
    ws.send(Message::text("héllo")).unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("héllo"));
    let big: Vec<u8> = (0..300_000u32).map(|i| i as u8).collect();
    ws.send(Message::binary(big.clone())).unwrap();
    assert_eq!(ws.read().unwrap(), Message::Binary(Bytes::from(big)));
    ws.send(Message::Ping(Bytes::from_static(b"p"))).unwrap();
    assert_eq!(ws.read().unwrap(), Message::Pong(Bytes::from_static(b"p")));
    ws.close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "bye".into(),
    }))
    .unwrap();
    // The server echoes the close, then closes the TCP connection.
    loop {
        match ws.read() {
            Ok(Message::Close(Some(frame))) => assert_eq!(frame.code, CloseCode::Normal),
            Ok(other) => panic!("unexpected {other:?}"),
            Err(WsError::ConnectionClosed) => break,
            Err(e) => panic!("{e}"),
        }
    }
}

#[test]
fn every_program_carrier_is_accepted_with_the_right_token() {
    let basic = format!("Basic {}", STANDARD.encode(format!("token:{TOKEN}")));
    let bearer = format!("Bearer {TOKEN}");
    let cookie = format!("theme=dark; token={TOKEN}");
    let slot = format!("access_token, {TOKEN}");
    let query = format!("/?token={TOKEN}");
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("/", vec![("authorization", &bearer)]),
        ("/", vec![("authorization", &basic)]),
        (&query, vec![]),
        ("/", vec![("cookie", &cookie)]),
        ("/", vec![("sec-websocket-protocol", &slot)]),
    ];
    let (addr, server) = server(cases.len(), false);
    for (path, headers) in &cases {
        let ws = connect(addr, path, headers).unwrap_or_else(|e| panic!("{headers:?}: {e}"));
        echo_and_close(ws);
    }
    server.join().unwrap();
}

#[test]
fn a_wrong_or_missing_token_gets_a_401_with_challenges() {
    let wrong_bearer = "Bearer not-the-token".to_string();
    let cases: Vec<Vec<(&str, &str)>> = vec![vec![("authorization", &wrong_bearer)], vec![]];
    let (addr, server) = server(cases.len(), false);
    for headers in &cases {
        match connect(addr, "/", headers) {
            Err(WsError::Http(response)) => {
                assert_eq!(response.status(), 401);
                let challenges: Vec<_> = response
                    .headers()
                    .get_all("www-authenticate")
                    .iter()
                    .map(|v| v.to_str().unwrap().to_string())
                    .collect();
                assert!(challenges[0].starts_with("Bearer realm="), "{challenges:?}");
                assert!(challenges[1].starts_with("Basic realm="), "{challenges:?}");
                assert_eq!(
                    challenges[0].contains("invalid_token"),
                    !headers.is_empty(),
                    "{challenges:?}"
                );
                let body = response.body().as_deref().unwrap_or_default();
                assert!(!String::from_utf8_lossy(body).contains("not-the-token"));
            }
            Ok(_) => panic!("{headers:?} was accepted"),
            Err(e) => panic!("{headers:?}: {e}"),
        }
    }
    server.join().unwrap();
}

#[test]
fn first_message_authentication() {
    let (addr, server) = server(2, true);
    // Right token as the first message: it is consumed, not echoed.
    let mut ws = connect(addr, "/", &[]).unwrap();
    ws.send(Message::text(TOKEN)).unwrap();
    echo_and_close(ws);
    // Wrong token: close 1008.
    let mut ws = connect(addr, "/", &[]).unwrap();
    ws.send(Message::text("wrong")).unwrap();
    match ws.read() {
        Ok(Message::Close(Some(frame))) => assert_eq!(frame.code, CloseCode::Policy),
        other => panic!("{other:?}"),
    }
    drop(ws);
    server.join().unwrap();
}
