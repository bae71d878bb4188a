//! `bench-hold ADDR PATH N [ADMIN_SOCKET INTERRUPT_PATH]`: opens N connections to ADDR, sends
//! `GET PATH` on each and keeps them waiting (for `bench/scale.sh`). Prints `held N` once every
//! request is written, then waits for a line on stdin. With an admin socket, it then posts
//! `INTERRUPT_PATH` there and prints how long until every client held its answer, and how many
//! answers had each status; without one, it exits (the server's requests wait on).

use std::collections::BTreeMap;
use std::io::{BufRead, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (addr, path, n, admin) = match args.as_slice() {
        [_, addr, path, n] => (addr, path, n, None),
        [_, addr, path, n, socket, interrupt] => (addr, path, n, Some((socket, interrupt))),
        _ => {
            eprintln!("usage: bench-hold ADDR PATH N [ADMIN_SOCKET INTERRUPT_PATH]");
            std::process::exit(2);
        }
    };
    let n: usize = n.parse().expect("N is a number");
    let request = format!("GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n");
    let mut held = Vec::with_capacity(n);
    for i in 0..n {
        let mut stream = TcpStream::connect(addr.as_str())
            .unwrap_or_else(|e| fail(&format!("connection {i} of {n}: {e}")));
        stream
            .write_all(request.as_bytes())
            .unwrap_or_else(|e| fail(&format!("request {i} of {n}: {e}")));
        held.push(stream);
    }
    println!("held {n}");
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    let Some((socket, interrupt)) = admin else {
        return;
    };
    let start = Instant::now();
    let reply = post(socket, interrupt);
    let posted = start.elapsed();
    let mut statuses = BTreeMap::<String, usize>::new();
    let mut buf = [0u8; 512];
    for stream in &mut held {
        // Every answer is short and sent whole: its status line is in the first read.
        let got = stream.read(&mut buf).unwrap_or(0);
        let head = String::from_utf8_lossy(&buf[..got]);
        let status = head.split(' ').nth(1).unwrap_or("none").to_owned();
        *statuses.entry(status).or_default() += 1;
    }
    let all = start.elapsed();
    println!(
        "interrupt: POST answered in {:.1} ms ({} bytes), every client held its answer {:.1} ms after the POST; statuses {statuses:?}",
        posted.as_secs_f64() * 1e3,
        reply.len(),
        all.as_secs_f64() * 1e3
    );
}

/// `POST path` over the admin socket; the whole answer.
fn post(socket: &str, path: &str) -> Vec<u8> {
    let mut stream =
        UnixStream::connect(socket).unwrap_or_else(|e| fail(&format!("admin socket: {e}")));
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: admin\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .unwrap_or_else(|e| fail(&format!("admin socket: {e}")));
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    reply
}

fn fail(message: &str) -> ! {
    eprintln!("bench-hold: {message}");
    std::process::exit(1);
}
