//! What `pm install` checks before a package is installed: the file is a zip archive (end of
//! central directory, central and local headers that agree, CRC-32 of the manifest) with an
//! `AndroidManifest.xml` naming the package. Failures carry Android's codes
//! (`INSTALL_PARSE_FAILED_NOT_APK`, `INSTALL_PARSE_FAILED_MANIFEST_MALFORMED`).
//!
//! The simulator reads text manifests (stored or deflated): `<manifest package="…">` and the
//! optional `<application android:label="…">`. Android's binary XML manifest is refused with
//! `INSTALL_PARSE_FAILED_MANIFEST_MALFORMED`: the phone runs no code, so an APK built for it is a
//! zip with a text manifest.

use std::sync::OnceLock;

/// Largest APK the simulated phone accepts.
pub const MAX_APK_BYTES: usize = 64 * 1024 * 1024;
/// Largest manifest it inflates.
const MAX_MANIFEST_BYTES: usize = 1024 * 1024;

/// The package an APK declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApkInfo {
    pub package: String,
    pub label: String,
}

/// Why an install failed: Android's failure code and its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallFailure {
    pub code: &'static str,
    pub message: String,
}

impl std::fmt::Display for InstallFailure {
    /// What `pm install` prints: `Failure [CODE: message]`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Failure [{}: {}]", self.code, self.message)
    }
}

fn not_apk(why: &str) -> InstallFailure {
    InstallFailure {
        code: "INSTALL_PARSE_FAILED_NOT_APK",
        message: format!("Failed to parse base.apk: {why}"),
    }
}

fn malformed(why: &str) -> InstallFailure {
    InstallFailure {
        code: "INSTALL_PARSE_FAILED_MANIFEST_MALFORMED",
        message: format!("Failed to parse base.apk: {why}"),
    }
}

fn u16_at(b: &[u8], at: usize) -> Option<usize> {
    b.get(at..at + 2)
        .map(|s| usize::from(u16::from_le_bytes([s[0], s[1]])))
}

fn u32_at(b: &[u8], at: usize) -> Option<usize> {
    b.get(at..at + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize)
}

/// Reads the package name and label out of an APK's bytes.
pub fn parse_apk(bytes: &[u8]) -> Result<ApkInfo, InstallFailure> {
    if bytes.len() > MAX_APK_BYTES {
        return Err(not_apk("file too large"));
    }
    if !bytes.starts_with(b"PK\x03\x04") {
        return Err(not_apk("not a zip archive"));
    }
    // End of central directory: 22 bytes plus a comment of at most 65535.
    let lowest = bytes.len().saturating_sub(22 + 65535);
    let eocd = (lowest..=bytes.len().saturating_sub(22))
        .rev()
        .find(|&i| bytes[i..].starts_with(b"PK\x05\x06"))
        .ok_or_else(|| not_apk("no end of central directory (truncated archive)"))?;
    let entries = u16_at(bytes, eocd + 10).unwrap_or(0);
    let mut at = u32_at(bytes, eocd + 16).unwrap_or(bytes.len());
    for _ in 0..entries {
        if bytes.get(at..at + 4) != Some(b"PK\x01\x02") {
            return Err(not_apk("corrupt central directory"));
        }
        let field = |off: usize| u16_at(bytes, at + off).ok_or_else(|| not_apk("truncated"));
        let field32 = |off: usize| u32_at(bytes, at + off).ok_or_else(|| not_apk("truncated"));
        let method = field(10)?;
        let crc = field32(16)? as u32;
        let compressed = field32(20)?;
        let size = field32(24)?;
        let (name_len, extra_len, comment_len) = (field(28)?, field(30)?, field(32)?);
        let local = field32(42)?;
        let name = bytes
            .get(at + 46..at + 46 + name_len)
            .ok_or_else(|| not_apk("truncated"))?;
        if name == b"AndroidManifest.xml" {
            let data = entry_data(bytes, local, method, compressed, size)?;
            if crc32fast::hash(&data) != crc {
                return Err(not_apk("AndroidManifest.xml fails its CRC check"));
            }
            return manifest_info(&data);
        }
        at += 46 + name_len + extra_len + comment_len;
    }
    Err(not_apk("AndroidManifest.xml not found"))
}

fn entry_data(
    bytes: &[u8],
    local: usize,
    method: usize,
    compressed: usize,
    size: usize,
) -> Result<Vec<u8>, InstallFailure> {
    if bytes.get(local..local + 4) != Some(b"PK\x03\x04") {
        return Err(not_apk("corrupt local header"));
    }
    let name_len = u16_at(bytes, local + 26).ok_or_else(|| not_apk("truncated"))?;
    let extra_len = u16_at(bytes, local + 28).ok_or_else(|| not_apk("truncated"))?;
    let start = local + 30 + name_len + extra_len;
    let raw = bytes
        .get(start..start.saturating_add(compressed))
        .ok_or_else(|| not_apk("truncated entry"))?;
    if size > MAX_MANIFEST_BYTES {
        return Err(malformed("manifest too large"));
    }
    match method {
        0 => Ok(raw.to_vec()),
        8 => miniz_oxide::inflate::decompress_to_vec_with_limit(raw, MAX_MANIFEST_BYTES)
            .map_err(|_| not_apk("corrupt deflate data")),
        _ => Err(not_apk("unsupported compression method")),
    }
}

fn manifest_info(data: &[u8]) -> Result<ApkInfo, InstallFailure> {
    if data.starts_with(&[0x03, 0x00, 0x08, 0x00]) {
        return Err(malformed(
            "binary XML manifests are not supported by the simulated phone",
        ));
    }
    let text = std::str::from_utf8(data).map_err(|_| malformed("manifest is not UTF-8"))?;
    static PACKAGE: OnceLock<regex::Regex> = OnceLock::new();
    static LABEL: OnceLock<regex::Regex> = OnceLock::new();
    let package_re = PACKAGE.get_or_init(|| {
        regex::Regex::new(r#"<manifest\b[^>]*\bpackage\s*=\s*"([^"]*)""#).expect("valid regex")
    });
    let label_re = LABEL.get_or_init(|| {
        regex::Regex::new(r#"<application\b[^>]*\bandroid:label\s*=\s*"([^"]*)""#)
            .expect("valid regex")
    });
    let package = package_re
        .captures(text)
        .and_then(|c| c.get(1))
        .map(|m| m.as_str().to_string())
        .ok_or_else(|| malformed("<manifest> has no package attribute"))?;
    if !valid_package_name(&package) {
        return Err(InstallFailure {
            code: "INSTALL_PARSE_FAILED_BAD_PACKAGE_NAME",
            message: format!("Invalid manifest package: {package:?}"),
        });
    }
    let label = label_re
        .captures(text)
        .and_then(|c| c.get(1))
        .map(|m| m.as_str().trim().to_string())
        .filter(|l| !l.is_empty() && l.len() <= 40 && !l.starts_with('@'))
        .unwrap_or_else(|| package.clone());
    Ok(ApkInfo { package, label })
}

/// Android's rule: at least two dot-separated segments, each a Java identifier of ASCII letters,
/// digits and `_`, not starting with a digit.
pub fn valid_package_name(name: &str) -> bool {
    let parts: Vec<&str> = name.split('.').collect();
    name.len() <= 255
        && parts.len() >= 2
        && parts.iter().all(|p| {
            p.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

/// Builds a minimal APK (a zip with a stored text `AndroidManifest.xml` and a `classes.dex`
/// placeholder): what tests and demos install.
pub fn build_demo_apk(package: &str, label: &str) -> Vec<u8> {
    let manifest = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<manifest xmlns:android=\"http://schemas.android.com/apk/res/android\" package=\"{package}\">\n  <application android:label=\"{label}\"/>\n</manifest>\n"
    );
    zip_stored(&[
        ("AndroidManifest.xml", manifest.as_bytes()),
        ("classes.dex", b"dex\n035\0"),
    ])
}

/// A zip archive of stored (uncompressed) entries.
pub fn zip_stored(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in files {
        let offset = out.len() as u32;
        let crc = crc32fast::hash(data);
        let header = |sig: &[u8], central: bool| {
            let mut h = sig.to_vec();
            if central {
                h.extend_from_slice(&20u16.to_le_bytes()); // made by
            }
            h.extend_from_slice(&20u16.to_le_bytes()); // version needed
            h.extend_from_slice(&0u16.to_le_bytes()); // flags
            h.extend_from_slice(&0u16.to_le_bytes()); // stored
            h.extend_from_slice(&0u32.to_le_bytes()); // time, date
            h.extend_from_slice(&crc.to_le_bytes());
            h.extend_from_slice(&(data.len() as u32).to_le_bytes());
            h.extend_from_slice(&(data.len() as u32).to_le_bytes());
            h.extend_from_slice(&(name.len() as u16).to_le_bytes());
            h.extend_from_slice(&0u16.to_le_bytes()); // extra
            if central {
                h.extend_from_slice(&[0; 6]); // comment, disk, internal attributes
                h.extend_from_slice(&0u32.to_le_bytes()); // external attributes
                h.extend_from_slice(&offset.to_le_bytes());
            }
            h.extend_from_slice(name.as_bytes());
            h
        };
        out.extend_from_slice(&header(b"PK\x03\x04", false));
        out.extend_from_slice(data);
        central.extend_from_slice(&header(b"PK\x01\x02", true));
    }
    let cd_offset = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(b"PK\x05\x06");
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&(files.len() as u16).to_le_bytes());
    out.extend_from_slice(&(files.len() as u16).to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_manifest_apk_installs() {
        let apk = build_demo_apk("com.example.hello", "Hello");
        assert_eq!(
            parse_apk(&apk),
            Ok(ApkInfo {
                package: "com.example.hello".into(),
                label: "Hello".into()
            })
        );
    }

    #[test]
    fn deflated_manifests_are_read() {
        let manifest = br#"<manifest package="org.x.y"><application/></manifest>"#;
        let mut apk = zip_stored(&[("AndroidManifest.xml", manifest)]);
        // Rewrite the single entry as deflated.
        let deflated = miniz_oxide::deflate::compress_to_vec(manifest, 6);
        let name = b"AndroidManifest.xml";
        let data_at = 30 + name.len();
        apk.splice(data_at..data_at + manifest.len(), deflated.iter().copied());
        let delta = deflated.len() as i64 - manifest.len() as i64;
        let fix = |apk: &mut Vec<u8>, at: usize, v: u32| {
            apk[at..at + 4].copy_from_slice(&v.to_le_bytes());
        };
        apk[8..10].copy_from_slice(&8u16.to_le_bytes());
        fix(&mut apk, 18, deflated.len() as u32);
        let cd = (data_at as i64 + deflated.len() as i64) as usize;
        apk[cd + 10..cd + 12].copy_from_slice(&8u16.to_le_bytes());
        fix(&mut apk, cd + 20, deflated.len() as u32);
        let eocd = apk.len() - 22;
        let old = u32::from_le_bytes([
            apk[eocd + 16],
            apk[eocd + 17],
            apk[eocd + 18],
            apk[eocd + 19],
        ]);
        fix(&mut apk, eocd + 16, (i64::from(old) + delta) as u32);
        let info = parse_apk(&apk).expect("deflated manifest");
        assert_eq!(
            (info.package.as_str(), info.label.as_str()),
            ("org.x.y", "org.x.y")
        );
    }

    #[test]
    fn corrupt_apks_fail_like_android() {
        let e = parse_apk(b"this is not a zip").unwrap_err();
        assert_eq!(e.code, "INSTALL_PARSE_FAILED_NOT_APK");
        assert!(
            e.to_string()
                .starts_with("Failure [INSTALL_PARSE_FAILED_NOT_APK: ")
        );
        let apk = build_demo_apk("com.example.hello", "Hello");
        // Truncated: no end of central directory.
        assert_eq!(
            parse_apk(&apk[..apk.len() / 2]).unwrap_err().code,
            "INSTALL_PARSE_FAILED_NOT_APK"
        );
        // A flipped byte in the manifest fails its CRC.
        let mut bad = apk.clone();
        bad[60] ^= 0x20;
        assert_eq!(
            parse_apk(&bad).unwrap_err().code,
            "INSTALL_PARSE_FAILED_NOT_APK"
        );
        // No manifest, a manifest without package, a bad package name, a binary manifest.
        let none = zip_stored(&[("classes.dex", b"x")]);
        assert_eq!(
            parse_apk(&none).unwrap_err().code,
            "INSTALL_PARSE_FAILED_NOT_APK"
        );
        let nopkg = zip_stored(&[("AndroidManifest.xml", b"<manifest/>")]);
        assert_eq!(
            parse_apk(&nopkg).unwrap_err().code,
            "INSTALL_PARSE_FAILED_MANIFEST_MALFORMED"
        );
        let badname = zip_stored(&[("AndroidManifest.xml", br#"<manifest package="nodots">"#)]);
        assert_eq!(
            parse_apk(&badname).unwrap_err().code,
            "INSTALL_PARSE_FAILED_BAD_PACKAGE_NAME"
        );
        let binary = zip_stored(&[("AndroidManifest.xml", &[3, 0, 8, 0, 1, 2, 3, 4])]);
        assert_eq!(
            parse_apk(&binary).unwrap_err().code,
            "INSTALL_PARSE_FAILED_MANIFEST_MALFORMED"
        );
        // Random garbage after a zip signature never panics.
        let mut seed = 7u64;
        for n in 0..2000 {
            let mut b = apk.clone();
            for _ in 0..(n % 8 + 1) {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let at = 4 + (seed >> 33) as usize % (b.len() - 4);
                b[at] = (seed >> 17) as u8;
            }
            let _ = parse_apk(&b);
            let _ = parse_apk(&b[..(seed >> 40) as usize % b.len()]);
        }
    }

    #[test]
    fn package_names() {
        assert!(valid_package_name("com.labwright.demo"));
        assert!(!valid_package_name("demo"));
        assert!(!valid_package_name("com..x"));
        assert!(!valid_package_name("com.1x"));
    }
}
