//! A minimal HTTP/1.1 keep-alive client: N requests, one at a time, on one connection. Used to
//! count the server's instructions per request under callgrind (the client must not be the
//! noise, and wrk does not stop after exactly N requests).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;

/// Sends `n` `GET path` requests on one keep-alive connection, reading each response.
///
/// # Errors
///
/// A connection error, or a response that is not a 200.
pub fn run(addr: &str, path: &str, n: u64) -> io::Result<()> {
    let stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let request = format!("GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n");
    let mut line = String::new();
    for _ in 0..n {
        writer.write_all(request.as_bytes())?;
        line.clear();
        reader.read_line(&mut line)?;
        if !line.starts_with("HTTP/1.1 200") {
            return Err(io::Error::other(format!(
                "unexpected status line: {line:?}"
            )));
        }
        let mut length = 0usize;
        loop {
            line.clear();
            reader.read_line(&mut line)?;
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().map_err(io::Error::other)?;
                }
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
    }
    Ok(())
}
