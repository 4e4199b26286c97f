//! Names instead of ids: a device given as its id, its name, its key on its host, or
//! `host/key` becomes the one device it names; a test case title is checked against the list.
//! Unknown names get "did you mean"; ambiguous ones list what they match.

use labwright_wire::rest::{DeviceView, Page, TestCaseView};

use crate::{Client, client::decode, failure::Failure};

/// The server's largest page.
const PAGE: u32 = 500;

/// Every device the caller can see.
pub(crate) fn all_devices(client: &Client) -> anyhow::Result<Vec<DeviceView>> {
    let mut items = Vec::new();
    loop {
        let answer = client.get(
            "/api/v1/devices",
            &[
                ("limit", PAGE.to_string()),
                ("offset", items.len().to_string()),
            ],
        )?;
        let page: Page<DeviceView> = decode(&answer)?;
        let got = page.items.len();
        items.extend(page.items);
        if got == 0 || items.len() as i64 >= page.total {
            return Ok(items);
        }
    }
}

/// The device `given` names: an id is taken as it is (the server says whether it exists).
pub(crate) fn device_id(client: &Client, given: &str) -> anyhow::Result<String> {
    if uuid_like(given) {
        return Ok(given.to_string());
    }
    Ok(device(client, given)?.id.to_string())
}

/// The one device `given` names among those the caller can see.
pub(crate) fn device(client: &Client, given: &str) -> anyhow::Result<DeviceView> {
    let devices = all_devices(client)?;
    pick_device(devices, given)
}

fn pick_device(devices: Vec<DeviceView>, given: &str) -> anyhow::Result<DeviceView> {
    let (by_id, rest): (Vec<_>, Vec<_>) = devices
        .into_iter()
        .partition(|d| d.id.to_string().eq_ignore_ascii_case(given));
    if let Some(d) = by_id.into_iter().next() {
        return Ok(d);
    }
    let qualified = |d: &DeviceView| format!("{}/{}", d.host_name, d.device_key);
    let matches: Vec<&DeviceView> = rest
        .iter()
        .filter(|d| qualified(d) == given || d.device_key == given || d.name == given)
        .collect();
    match matches.as_slice() {
        [one] => Ok((*one).clone()),
        [] => {
            let mut known: Vec<String> = rest.iter().map(qualified).collect();
            known.extend(rest.iter().map(|d| d.device_key.clone()));
            known.extend(rest.iter().map(|d| d.name.clone()));
            Err(Failure::NotFound(format!(
                "no device {given:?}{}",
                did_you_mean(given, &known)
            ))
            .into())
        }
        many => {
            let listed: Vec<String> = many
                .iter()
                .map(|d| format!("{} ({})", qualified(d), d.id))
                .collect();
            Err(Failure::Usage(format!(
                "device {given:?} is ambiguous: it names {}; give host/device or the id",
                listed.join(", ")
            ))
            .into())
        }
    }
}

/// Checks that a test case of this title exists, suggesting near titles when it does not.
pub(crate) fn testcase(client: &Client, given: &str) -> anyhow::Result<()> {
    let list: Vec<TestCaseView> = decode(&client.get("/api/v1/testcases", &[])?)?;
    if list.iter().any(|t| t.name == given) {
        return Ok(());
    }
    let names: Vec<String> = list.into_iter().map(|t| t.name).collect();
    Err(Failure::NotFound(format!(
        "no test case {given:?}{}",
        did_you_mean(given, &names)
    ))
    .into())
}

fn uuid_like(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// `"; did you mean "a" or "b"?"` for the known names closest to `given`, or nothing when none
/// is close (within a third of the name's length, at least 2 edits).
fn did_you_mean(given: &str, known: &[String]) -> String {
    let budget = (given.chars().count() / 3).max(2);
    let mut near: Vec<(usize, &String)> = known
        .iter()
        .map(|k| (edit_distance(&given.to_lowercase(), &k.to_lowercase()), k))
        .filter(|(d, _)| *d <= budget)
        .collect();
    near.sort();
    near.dedup_by(|a, b| a.1 == b.1);
    let names: Vec<String> = near.iter().take(3).map(|(_, k)| format!("{k:?}")).collect();
    if names.is_empty() {
        String::new()
    } else {
        format!("; did you mean {}?", names.join(" or "))
    }
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = if ca == *cb {
                diagonal
            } else {
                1 + diagonal.min(above).min(row[j])
            };
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(host: &str, key: &str, name: &str, n: u8) -> DeviceView {
        serde_json::from_value(serde_json::json!({
            "id": format!("00000000-0000-4000-8000-0000000000{n:02}"),
            "host_id": "00000000-0000-4000-8000-000000000099",
            "host_name": host, "device_key": key, "name": name, "model": "m", "driver": "sim",
            "capabilities": [], "tags": [], "status": "online", "status_detail": "",
            "last_seen_at": "2030-01-01T00:00:00Z", "reservation": null,
        }))
        .unwrap()
    }

    fn fleet() -> Vec<DeviceView> {
        vec![
            dev("rack-a", "stb-1", "Living room box", 1),
            dev("rack-a", "stb-2", "Kitchen box", 2),
            dev("rack-b", "stb-2", "Office box", 3),
        ]
    }

    #[test]
    fn a_device_is_found_by_key_name_host_key_or_id() {
        assert_eq!(
            pick_device(fleet(), "stb-1").unwrap().name,
            "Living room box"
        );
        assert_eq!(
            pick_device(fleet(), "Kitchen box").unwrap().device_key,
            "stb-2"
        );
        assert_eq!(
            pick_device(fleet(), "rack-b/stb-2").unwrap().name,
            "Office box"
        );
        let id = "00000000-0000-4000-8000-000000000003";
        assert_eq!(pick_device(fleet(), id).unwrap().name, "Office box");
    }

    #[test]
    fn an_ambiguous_name_lists_what_it_names() {
        let e = pick_device(fleet(), "stb-2").unwrap_err();
        let text = e.to_string();
        assert!(text.contains("ambiguous"), "{text}");
        assert!(
            text.contains("rack-a/stb-2") && text.contains("rack-b/stb-2"),
            "{text}"
        );
        assert!(matches!(
            e.downcast_ref::<Failure>(),
            Some(Failure::Usage(_))
        ));
    }

    #[test]
    fn an_unknown_name_suggests_the_nearest() {
        let e = pick_device(fleet(), "stb1").unwrap_err();
        assert!(matches!(
            e.downcast_ref::<Failure>(),
            Some(Failure::NotFound(_))
        ));
        assert!(e.to_string().contains("did you mean \"stb-1\""), "{e}");
        let far = pick_device(fleet(), "toaster").unwrap_err().to_string();
        assert!(!far.contains("did you mean"), "{far}");
    }

    #[test]
    fn edit_distance_counts_insertions_deletions_and_swaps() {
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("zap", "zap"), 0);
        assert_eq!(edit_distance("zap", "zip"), 1);
        assert_eq!(edit_distance("channel up", "channelup"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn only_the_canonical_uuid_shape_is_taken_as_an_id() {
        assert!(uuid_like("6f1c2a3b-0000-4000-8000-00000000000a"));
        assert!(!uuid_like("stb-1"));
        assert!(!uuid_like("6f1c2a3b00004000800000000000000a"));
    }
}
