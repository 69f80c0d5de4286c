//! forja's mark: an anvil under a spark, on a forge-orange square.
//! The SVG and the PNGs are drawn from the same shapes.

/// The SVG logo.
pub const SVG: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64" width="64" height="64">
<rect width="64" height="64" rx="12" fill="#d9480f"/>
<polygon points="32,6 38,22 26,22" fill="#ffd43b"/>
<rect x="10" y="28" width="44" height="10" fill="#212529"/>
<rect x="24" y="38" width="16" height="10" fill="#212529"/>
<rect x="16" y="48" width="32" height="8" fill="#212529"/>
</svg>
"##;

const ORANGE: [u8; 4] = [0xd9, 0x48, 0x0f, 0xff];
const SPARK: [u8; 4] = [0xff, 0xd4, 0x3b, 0xff];
const IRON: [u8; 4] = [0x21, 0x25, 0x29, 0xff];

fn pixel(x: f32, y: f32) -> [u8; 4] {
    // Coordinates in the SVG's 64×64 space.
    let in_rect = |x0: f32, y0: f32, w: f32, h: f32| x >= x0 && x < x0 + w && y >= y0 && y < y0 + h;
    let r = 12.0;
    let corner = |cx: f32, cy: f32| (x - cx).powi(2) + (y - cy).powi(2) > r * r;
    if (x < r && y < r && corner(r, r))
        || (x > 64.0 - r && y < r && corner(64.0 - r, r))
        || (x < r && y > 64.0 - r && corner(r, 64.0 - r))
        || (x > 64.0 - r && y > 64.0 - r && corner(64.0 - r, 64.0 - r))
    {
        return [0, 0, 0, 0];
    }
    if in_rect(10.0, 28.0, 44.0, 10.0)
        || in_rect(24.0, 38.0, 16.0, 10.0)
        || in_rect(16.0, 48.0, 32.0, 8.0)
    {
        return IRON;
    }
    if (6.0..22.0).contains(&y) && (x - 32.0).abs() <= (y - 6.0) * 6.0 / 16.0 {
        return SPARK;
    }
    ORANGE
}

fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xffff_ffffu32;
    for &b in data {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xedb8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

fn chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let mut body = kind.to_vec();
    body.extend_from_slice(data);
    out.extend_from_slice(&body);
    out.extend_from_slice(&crc32(&body).to_be_bytes());
}

/// The logo as a `size`×`size` RGBA PNG (stored, uncompressed deflate).
pub fn png(size: u32) -> Vec<u8> {
    let scale = 64.0 / size as f32;
    let mut raw = Vec::new();
    for y in 0..size {
        raw.push(0); // filter: none
        for x in 0..size {
            raw.extend_from_slice(&pixel((x as f32 + 0.5) * scale, (y as f32 + 0.5) * scale));
        }
    }
    // zlib stream with stored blocks.
    let mut z = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = raw.chunks(65535).collect();
    for (i, block) in blocks.iter().enumerate() {
        z.push(u8::from(i + 1 == blocks.len()));
        let len = block.len() as u16;
        z.extend_from_slice(&len.to_le_bytes());
        z.extend_from_slice(&(!len).to_le_bytes());
        z.extend_from_slice(block);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in &raw {
        a = (a + byte as u32) % 65521;
        b = (b + a) % 65521;
    }
    z.extend_from_slice(&((b << 16) | a).to_be_bytes());
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&size.to_be_bytes());
    ihdr.extend_from_slice(&size.to_be_bytes());
    ihdr.extend_from_slice(&[8, 6, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &z);
    chunk(&mut out, b"IEND", &[]);
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn png_has_signature_and_right_size() {
        let p = super::png(32);
        assert_eq!(&p[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(u32::from_be_bytes([p[16], p[17], p[18], p[19]]), 32);
        assert_eq!(super::crc32(b"IEND"), 0xae42_6082);
    }
}
