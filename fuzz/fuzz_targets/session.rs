//! The session state machine over arbitrary byte streams: a real sidecar (plain mode,
//! no database: a pass-through) between a gateway and a worldserver on loopback, each side
//! sending arbitrary bytes and closing. Whatever the bytes (frames, garbage, broken
//! headers), each side must receive exactly what the other sent: framed frames are
//! forwarded as their bytes, and an unframeable stream is copied opaquely.
#![no_main]

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use tc9_sidecar::config::Config;
use tc9_sidecar::Sidecar;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;

struct Rig {
    runtime: Runtime,
    sidecar: SocketAddr,
    worldserver: TcpListener,
    /// Keeps the sidecar running for the fuzzer's whole life.
    _running: Sidecar,
}

fn rig() -> &'static Rig {
    static RIG: OnceLock<Rig> = OnceLock::new();
    RIG.get_or_init(|| {
        let runtime = Runtime::new().expect("runtime");
        let (running, worldserver) = runtime.block_on(async {
            let worldserver = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let config = Config {
                listen: "127.0.0.1:0".parse().expect("addr"),
                upstream: worldserver.local_addr().expect("addr").to_string(),
                max_client_frame: 512,
                max_server_frame: 4096,
                ..Config::default()
            };
            let running = Sidecar::build(&config).await.expect("sidecar");
            (running, worldserver)
        });
        Rig {
            runtime,
            sidecar: running.addr(),
            worldserver,
            _running: running,
        }
    })
}

async fn exchange(mut stream: TcpStream, send: Vec<u8>) -> Vec<u8> {
    let (mut read, mut write) = stream.split();
    let writer = async {
        let _ = write.write_all(&send).await;
        let _ = write.shutdown().await;
    };
    let reader = async {
        let mut got = Vec::new();
        let _ = read.read_to_end(&mut got).await;
        got
    };
    let ((), got) = tokio::join!(writer, reader);
    got
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let at = usize::from(split).min(rest.len());
    let (c2s, s2c) = rest.split_at(at);
    let rig = rig();
    rig.runtime.block_on(async {
        let gateway = TcpStream::connect(rig.sidecar).await.expect("connect");
        let (world, _) = rig.worldserver.accept().await.expect("accept");
        let both = async {
            tokio::join!(
                exchange(gateway, c2s.to_vec()),
                exchange(world, s2c.to_vec())
            )
        };
        let (at_gateway, at_world) = tokio::time::timeout(Duration::from_secs(10), both)
            .await
            .expect("the session ends");
        assert_eq!(at_world, c2s, "the worldserver gets the gateway's bytes");
        assert_eq!(at_gateway, s2c, "the gateway gets the worldserver's bytes");
    });
});
