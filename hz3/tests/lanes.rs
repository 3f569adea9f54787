//! Each lane's distinctive mechanism, tested against the lane's own manifest
//! (`hz3::config`), so every test fails when its mechanism is switched off:
//! the owner-shared stash (scale), the remote ring's owner-independent
//! footprint (scale), the owners in use (owners_per_cpu), the purge bound and
//! decay (mem_mstress, all lanes), the transfer lists (mem_mstress, scale), the
//! coarse size classes (mem_mstress), the budgeted large cache and its decay
//! (mem_large, all lanes), and threads far beyond owners.

#![allow(clippy::absurd_extreme_comparisons)] // lane constants

use std::process::Command;
use std::sync::{Arc, Barrier};

use hz3::config;
use hz3::raw;

fn free(p: *mut u8) {
    unsafe { raw::free(p) }
}

/// Remote frees reach the owner through its stash (no central-cache flush)
/// exactly when the lane enables the owner-shared stash.
#[test]
fn remote_returns_use_the_owner_stash_iff_enabled() {
    let size = 720; // a class no other test in this file uses
    let c = raw::class_of(size);
    // Allocate on a thread of its own and keep it alive (so its owner has a live thread).
    let (to_owner, from_main) = std::sync::mpsc::channel::<Vec<usize>>();
    let (to_main, from_owner) = std::sync::mpsc::channel::<Vec<usize>>();
    let owner = std::thread::spawn(move || {
        let v: Vec<usize> = (0..2000).map(|_| raw::malloc(size) as usize).collect();
        to_main.send(v).unwrap();
        // Wait until the other threads freed them, then allocate again.
        let _ = from_main.recv().unwrap();
        let again: Vec<usize> = (0..2000).map(|_| raw::malloc(size) as usize).collect();
        for &p in &again {
            free(p as *mut u8);
        }
    });
    let blocks = from_owner.recv().unwrap();
    let before = hz3::stats().classes[c].flushes;
    // Free from many short-lived threads: at least one lands on another owner.
    let chunks: Vec<Vec<usize>> = blocks.chunks(250).map(|c| c.to_vec()).collect();
    for ch in chunks {
        std::thread::spawn(move || {
            for p in ch {
                free(p as *mut u8);
            }
        })
        .join()
        .unwrap();
    }
    let after = hz3::stats().classes[c].flushes;
    to_owner.send(Vec::new()).unwrap();
    owner.join().unwrap();
    // 8 freeing threads over >= 8 owners: most of them are remote to the owner.
    if config::OWNER_STASH {
        // Remote batches went to the stash; only the freeing threads' own-owner
        // objects (if any thread shared the owner) reach the central cache.
        assert!(
            after - before <= 2,
            "owner stash enabled but {} central flushes happened",
            after - before
        );
    } else {
        assert!(after > before, "remote frees must reach the central cache");
    }
}

/// Builds and runs `example` (in hz3/examples) against a copy of
/// `lanes/<lane>.toml` whose lines starting with one of `set`'s keys are
/// replaced by `key = value` (removed when the value is empty), and returns
/// what it printed, parsed as a number.
/// The probe builds share one target directory under `target/`.
fn probe(example: &str, lane: &str, tag: &str, set: &[(&str, String)]) -> u64 {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    let tmp = std::env::temp_dir().join(format!("hz3-probe-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let base = std::fs::read_to_string(root.join(format!("lanes/{lane}.toml"))).unwrap();
    let mut text = String::new();
    for line in base.lines() {
        let key = line.split(['=', ' ']).next().unwrap_or("");
        match set.iter().find(|(k, _)| *k == key) {
            // An empty value drops the key (the lane schema rejects keys of the other shape).
            Some((_, v)) if v.is_empty() => {}
            Some((k, v)) => text.push_str(&format!("{k} = {v}\n")),
            None => {
                text.push_str(line);
                text.push('\n');
            }
        }
    }
    let file = tmp.join(format!("{lane}-{example}-{tag}.toml"));
    std::fs::write(&file, text).unwrap();
    let out = Command::new(env!("CARGO"))
        .args([
            "run",
            "--quiet",
            "-p",
            "hz3",
            "--example",
            example,
            "--target-dir",
        ])
        .arg(root.join("target").join("footprint-probe"))
        .env("HZ3_LANE_FILE", &file)
        .current_dir(&root)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "probe build failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// The per-thread footprint of a ring lane is the same at 8 and 32 owners,
/// while a dense lane's grows (built with two manifests that differ only in owners).
#[test]
fn ring_footprint_is_independent_of_owners() {
    let mut sizes = Vec::new();
    for (remote, owners) in [("ring", 8), ("ring", 32), ("dense", 8), ("dense", 32)] {
        let set = [
            ("owners", owners.to_string()),
            ("remote", format!("\"{remote}\"")),
            // `ring_slots` belongs to the ring shape only.
            (
                "ring_slots",
                if remote == "ring" {
                    "1024".to_string()
                } else {
                    String::new()
                },
            ),
        ];
        sizes.push(probe(
            "footprint",
            "scale",
            &format!("{remote}{owners}"),
            &set,
        ));
    }
    assert_eq!(
        sizes[0], sizes[1],
        "ring lane footprint changed with owners: {sizes:?}"
    );
    assert!(
        sizes[3] > sizes[2] * 3,
        "dense bank should grow with owners: {sizes:?}"
    );
    assert!(
        sizes[0] < sizes[2],
        "ring must be smaller than a dense bank: {sizes:?}"
    );
}

/// A lane's class layout (`tiny_max`, `classes_per_doubling`) is what holds
/// memory apart under churn: the mem_mstress manifest, built as it is and with
/// fine classes (16-byte steps to 1024 B, then 8 per doubling: 128 classes),
/// churns the same sizes; its coarser classes must keep clearly fewer span
/// bytes.
#[test]
fn coarser_classes_hold_fewer_span_bytes() {
    let fine = [
        ("tiny_max", "1024".to_string()),
        ("classes_per_doubling", "8".to_string()),
    ];
    let peaks = [
        probe("class_churn", "mem_mstress", "coarse", &[]),
        probe("class_churn", "mem_mstress", "fine", &fine),
    ];
    assert!(
        peaks[0] * 10 < peaks[1] * 9,
        "coarse classes should hold at least 10 % fewer span bytes: {peaks:?}"
    );
}

/// Free dirty pages beyond the lane's bound are handed back to the OS.
#[test]
fn free_pages_beyond_the_bound_are_purged() {
    // Allocate and free more than the bound of 60 KB blocks on one thread; then,
    // on the same thread (decay is per owner, and other tests' threads move the
    // owner loads), wait out the decay interval and make page-heap events.
    let n = (config::PURGE_OWNER_KIB * 1024 + (32 << 20)) / 60_000;
    let bound = (config::PURGE_OWNER_KIB * 1024 * config::OWNERS) as u64;
    std::thread::spawn(move || {
        let v: Vec<usize> = (0..n).map(|_| raw::malloc(60_000) as usize).collect();
        for &p in &v {
            unsafe { std::ptr::write_bytes(p as *mut u8, 1, 60_000) };
        }
        for p in v {
            free(p as *mut u8);
        }
        let s = hz3::stats();
        assert!(
            s.dirty_free_bytes <= bound,
            "{} dirty free bytes retained, bound {}",
            s.dirty_free_bytes,
            bound
        );
        assert!(s.bytes_purged > 0, "nothing was purged");
        if config::PURGE_DECAY_MS > 0 {
            // Decay: pages free through two whole half-interval epochs go back
            // at the first page-heap event after that (page_heap::decay_locked).
            // Without the purge thread (off by default) only events end an
            // epoch, and the epoch running when they were freed does not
            // count: up to four intervals with events after each.
            let purged_before = hz3::stats().bytes_purged;
            for _ in 0..4 {
                std::thread::sleep(std::time::Duration::from_millis(
                    config::PURGE_DECAY_MS as u64 + 30,
                ));
                for _ in 0..2 {
                    let v: Vec<usize> = (0..64).map(|_| raw::malloc(200_000) as usize).collect();
                    for p in v {
                        free(p as *mut u8);
                    }
                }
                if hz3::stats().bytes_purged > purged_before {
                    break;
                }
            }
            let s = hz3::stats();
            assert!(
                s.bytes_purged > purged_before,
                "no page went back within four decay intervals ({} dirty free bytes)",
                s.dirty_free_bytes
            );
            assert!(
                s.dirty_free_bytes <= bound,
                "{} dirty free bytes retained, bound {}",
                s.dirty_free_bytes,
                bound
            );
        }
    })
    .join()
    .unwrap();
}

/// A cached large mapping that sits unused through the decay period is unmapped
/// at the next large-block event, so a big large cache pins nothing once a
/// program stops allocating large blocks (and nothing decays without a period).
#[test]
fn idle_large_cache_entries_decay() {
    let size = (3 << 20) + 4096; // a size no other test in this file allocates
    let period = std::time::Duration::from_millis(config::PURGE_DECAY_MS as u64 + 50);
    // Other tests' large frees may evict this entry for the budget before it
    // decays; try a few times.
    let mut decayed = 0;
    for _ in 0..4 {
        let before = hz3::stats().large_cache_decayed;
        free(raw::malloc(size));
        std::thread::sleep(period);
        // A large-block event: a request the idle entry cannot serve.
        free(raw::malloc(4 * size));
        decayed = hz3::stats().large_cache_decayed - before;
        if decayed > 0 || config::PURGE_DECAY_MS == 0 {
            break;
        }
    }
    if config::PURGE_DECAY_MS > 0 && config::LARGE_CACHE_ENTRIES > 0 {
        assert!(
            decayed >= 1,
            "an idle cached mapping outlived the decay period"
        );
    } else {
        assert_eq!(decayed, 0, "the lane has no decay period");
    }
}

/// Freed large blocks are reused from the budgeted cache, and the cache stays within budget.
#[test]
fn large_cache_reuses_within_budget() {
    let budget = (config::LARGE_CACHE_MIB as u64) << 20;
    let size = 6 << 20;
    let before = hz3::stats().large_cache_hits;
    let p = raw::malloc(size);
    free(p);
    let q = raw::malloc(size);
    let hits = hz3::stats().large_cache_hits - before;
    if budget >= size as u64 && config::LARGE_CACHE_ENTRIES > 0 {
        assert!(
            hits >= 1,
            "a freed large block within budget must be reused"
        );
    } else {
        assert_eq!(hits, 0);
    }
    free(q);
    let v: Vec<usize> = (0..40)
        .map(|i| raw::malloc((5 + i % 20) << 20) as usize)
        .collect();
    for p in v {
        free(p as *mut u8);
    }
    assert!(
        hz3::stats().large_cached_bytes <= budget,
        "large cache over budget"
    );
}

/// 1000 threads alive at once (far beyond any lane's owners) all allocate and free.
#[test]
fn thousand_threads_at_once() {
    let n = 1000;
    let barrier = Arc::new(Barrier::new(n));
    let hs: Vec<_> = (0..n)
        .map(|i| {
            let b = barrier.clone();
            std::thread::Builder::new()
                .stack_size(128 * 1024)
                .spawn(move || {
                    let v: Vec<usize> = (0..50)
                        .map(|j| raw::malloc(16 + (i * 7 + j) % 3000) as usize)
                        .collect();
                    for (j, &p) in v.iter().enumerate() {
                        unsafe { *(p as *mut u64) = (i * 100 + j) as u64 };
                    }
                    b.wait();
                    for (j, &p) in v.iter().enumerate() {
                        assert_eq!(unsafe { *(p as *const u64) }, (i * 100 + j) as u64);
                        free(p as *mut u8);
                    }
                })
                .unwrap()
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
}

/// Threads are spread over min(owners, owners_per_cpu x CPUs available) owners
/// and never beyond (more owners than running CPUs only hold memory apart);
/// HZ3_OWNERS, when set, overrides.
#[test]
fn threads_use_only_the_owners_in_use() {
    free(raw::malloc(64)); // initialised
    let cpus = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        assert_eq!(
            libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set),
            0
        );
        libc::CPU_COUNT(&set) as usize
    };
    let want = match std::env::var("HZ3_OWNERS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        Some(n) => n.clamp(1, config::OWNERS),
        None if config::OWNERS_PER_CPU == 0 => config::OWNERS,
        None => (cpus * config::OWNERS_PER_CPU).clamp(1, config::OWNERS),
    };
    assert_eq!(hz3::owners_in_use(), want, "cpus={cpus}");
    // Many more threads than owners, all alive at once: with every owner open
    // to them, least-loaded picking would reach the owners beyond `want`.
    let n = 3 * config::OWNERS;
    let barrier = Arc::new(Barrier::new(n));
    let hs: Vec<_> = (0..n)
        .map(|_| {
            let b = barrier.clone();
            std::thread::spawn(move || {
                let p = raw::malloc(64);
                let o = hz3::owner_of(p).expect("small block has an owner");
                b.wait();
                free(p);
                o
            })
        })
        .collect();
    let mut seen = vec![0usize; config::OWNERS];
    for h in hs {
        seen[h.join().unwrap()] += 1;
    }
    let beyond: usize = seen[want..].iter().sum();
    assert_eq!(
        beyond, 0,
        "threads on owners beyond the {want} in use: {seen:?}"
    );
    assert!(
        seen.iter().filter(|&&c| c > 0).count() >= want.min(2),
        "threads not spread over the owners in use: {seen:?}"
    );
}

/// Lists a thread cache flushes stay whole in the central cache and come back
/// on the next refill exactly when the lane has transfer lists (`transfer_kib`;
/// off in the hardened build, where every flushed object goes through the span
/// checks).
#[test]
fn flushed_lists_come_back_whole_iff_transfer_lists() {
    let before = hz3::stats().transfer_refills;
    std::thread::spawn(|| {
        // Far more blocks of one class than a bin holds (fast: 256 of 3000 B):
        // freeing them overflows the bin (lists go to the central cache),
        // allocating them again refills.
        for round in 0..4u64 {
            let v: Vec<*mut u8> = (0..600).map(|_| raw::malloc(3000)).collect();
            for (i, &p) in v.iter().enumerate() {
                unsafe { *(p as *mut u64) = round * 1000 + i as u64 };
            }
            for (i, &p) in v.iter().enumerate() {
                assert_eq!(unsafe { *(p as *const u64) }, round * 1000 + i as u64);
                free(p);
            }
        }
    })
    .join()
    .unwrap();
    let hits = hz3::stats().transfer_refills - before;
    if config::TRANSFER_KIB > 0 && !hz3::HARDENED {
        assert!(hits > 0, "transfer lists enabled but no refill used one");
    } else {
        assert_eq!(
            hits, 0,
            "transfer lists disabled but {hits} refills used one"
        );
    }
}
