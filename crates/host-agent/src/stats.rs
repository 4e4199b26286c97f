//! System figures for heartbeats, read from `/proc` and `/sys` (no external tools).

use labwright_core::fleet::HostStats;

/// Keeps the previous CPU counters to turn them into a percentage between two heartbeats.
#[derive(Default)]
pub struct StatsReader {
    last_cpu: Option<(u64, u64)>,
}

impl StatsReader {
    pub fn read(&mut self) -> HostStats {
        let cpu = read_cpu();
        let cpu_percent = match (self.last_cpu, cpu) {
            (Some((busy0, total0)), Some((busy1, total1))) if total1 > total0 => {
                (busy1.saturating_sub(busy0)) as f32 * 100.0 / (total1 - total0) as f32
            }
            _ => 0.0,
        };
        if cpu.is_some() {
            self.last_cpu = cpu;
        }
        let (mem_total_bytes, mem_used_bytes) = read_mem().unwrap_or((0, 0));
        HostStats {
            cpu_percent,
            mem_used_bytes,
            mem_total_bytes,
            load1: read_first_f32("/proc/loadavg").unwrap_or(0.0),
            uptime_secs: read_first_f32("/proc/uptime")
                .map(|v| v as u64)
                .unwrap_or(0),
            temperature_c: std::fs::read_to_string("/sys/class/thermal/thermal_zone0/temp")
                .ok()
                .and_then(|s| s.trim().parse::<f32>().ok())
                .map(|milli| milli / 1000.0),
            disk_free_bytes: 0,
        }
    }
}

fn read_first_f32(path: &str) -> Option<f32> {
    std::fs::read_to_string(path)
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// (busy, total) jiffies from the aggregate `cpu` line of `/proc/stat`.
fn read_cpu() -> Option<(u64, u64)> {
    parse_cpu(&std::fs::read_to_string("/proc/stat").ok()?)
}

fn parse_cpu(text: &str) -> Option<(u64, u64)> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    if v.len() < 4 {
        return None;
    }
    let total: u64 = v.iter().sum();
    let idle = v[3] + v.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

/// (total, used) bytes from `/proc/meminfo`.
fn read_mem() -> Option<(u64, u64)> {
    parse_mem(&std::fs::read_to_string("/proc/meminfo").ok()?)
}

fn parse_mem(text: &str) -> Option<(u64, u64)> {
    let field = |name: &str| -> Option<u64> {
        text.lines()
            .find(|l| l.starts_with(name))?
            .split_whitespace()
            .nth(1)?
            .parse::<u64>()
            .ok()
            .map(|kb| kb * 1024)
    };
    let total = field("MemTotal:")?;
    let available = field("MemAvailable:")?;
    Some((total, total.saturating_sub(available)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_files() {
        let stat = "cpu  100 0 100 700 100 0 0 0 0 0\ncpu0 1 2 3 4\n";
        assert_eq!(parse_cpu(stat), Some((200, 1000)));
        let mem = "MemTotal:       1000 kB\nMemFree:         100 kB\nMemAvailable:    400 kB\n";
        assert_eq!(parse_mem(mem), Some((1_024_000, 614_400)));
        assert_eq!(parse_cpu("garbage"), None);
    }

    #[test]
    fn reads_this_machine() {
        let mut r = StatsReader::default();
        let _ = r.read();
        let s = r.read();
        assert!(s.mem_total_bytes > 0);
        assert!((0.0..=100.0).contains(&s.cpu_percent));
    }
}
