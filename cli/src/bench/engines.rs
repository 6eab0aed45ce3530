//! The engines `strata bench` drives in process: Strata (lock-free or baseline store, in memory
//! or on disk, snapshot isolation or serializable) through the public API, and the plain-map
//! limit; `make_engine` also dispatches to the SQL engines (`sql.rs`, `sqlrite.rs`, `turso.rs`).

use super::*;
/// The worker of an engine shared by all threads (`Engine::worker` is `None`).
pub(super) struct Shared(pub(super) Arc<dyn Engine>);

impl Worker for Shared {
    fn increment(&mut self, key: u64) -> Result<u64, String> {
        self.0.increment(key)
    }
    fn read(&mut self, key: u64) -> Result<Option<u64>, String> {
        self.0.read(key)
    }
    fn write(&mut self, key: u64, value: u64) -> Result<u64, String> {
        self.0.write(key, value)
    }
    fn transfer(&mut self, from: u64, to: u64, amount: u64) -> Result<u64, String> {
        self.0.transfer(from, to, amount)
    }
    fn total(&mut self) -> Result<u64, String> {
        self.0.sum()
    }
    fn scan(&mut self, start: u64, len: u64) -> Result<u64, String> {
        self.0.scan(start, len)
    }
    fn insert(&mut self, key: u64) -> Result<u64, String> {
        self.0.insert(key)
    }
    fn churn_step(&mut self, from: u64, to: u64, step: Churn) -> Result<(), String> {
        self.0.churn_step(from, to, step)
    }
}

pub(super) struct StrataEngine {
    db: Database,
    table: Table,
    /// Increments are merges (`Txn::add`) instead of read-modify-write txns.
    merge: bool,
}

/// Where an on-disk engine lives and how it commits.
pub(super) struct Disk {
    pub(super) dir: PathBuf,
    pub(super) durability: DurabilityArg,
    pub(super) file_io: FileIoArg,
}

/// A fresh database: in memory, or (with `disk`) emptied and opened in that directory.
pub(super) fn open_database(
    store: StoreKind,
    isolation: Isolation,
    disk: Option<&Disk>,
) -> Result<Database, String> {
    let options = Options::default().store(store).isolation(isolation);
    match disk {
        None => Ok(Database::with_options(options)),
        Some(d) => {
            let _ = std::fs::remove_dir_all(&d.dir);
            let options = options.durability(d.durability.into()).file_io(d.file_io.into());
            Database::open(&d.dir, options).map_err(|e| e.to_string())
        }
    }
}

impl StrataEngine {
    /// In memory, or (with `disk`) opened fresh in that directory; txns at `isolation`.
    pub(super) fn new(
        store: StoreKind,
        isolation: Isolation,
        keys: u64,
        initial: u64,
        disk: Option<&Disk>,
    ) -> Result<Self, String> {
        let db = open_database(store, isolation, disk)?;
        let table = db.create_table("counters").map_err(|e| e.to_string())?;
        let mut start = 0;
        while start < keys {
            let end = (start + PRELOAD_KEYS_PER_TXN).min(keys);
            db.transaction(|txn| {
                for k in start..end {
                    txn.put(&table, k.to_be_bytes(), initial.to_le_bytes())?;
                }
                Ok(())
            })
            .map_err(|e| e.to_string())?;
            start = end;
        }
        db.collect_garbage();
        Ok(StrataEngine { db, table, merge: false })
    }
}

fn decode(v: &[u8]) -> Result<u64, String> {
    v.try_into().map(u64::from_le_bytes).map_err(|_| format!("counter of {} bytes", v.len()))
}

impl Engine for StrataEngine {
    fn increment(&self, key: u64) -> Result<u64, String> {
        let mut runs = 0u64;
        let mut bad_value = None;
        let key = key.to_be_bytes();
        if self.merge {
            return self
                .db
                .transaction(|txn| {
                    runs += 1;
                    txn.add(&self.table, key, 1)
                })
                .map(|()| runs - 1)
                .map_err(|e| e.to_string());
        }
        self.db
            .transaction(|txn| {
                runs += 1;
                match txn.get_with(&self.table, key, |v| v.map_or(Ok(0), decode))? {
                    Ok(v) => txn.put(&self.table, key, (v + 1).to_le_bytes()),
                    Err(e) => {
                        bad_value = Some(e);
                        Ok(()) // commit nothing; reported below
                    }
                }
            })
            .map_err(|e| e.to_string())?;
        match bad_value {
            Some(e) => Err(e),
            None => Ok(runs - 1),
        }
    }

    fn sum(&self) -> Result<u64, String> {
        let snap = self.db.begin_read().map_err(|e| e.to_string())?;
        let rows = snap.scan(&self.table).map_err(|e| e.to_string())?;
        rows.iter().try_fold(0u64, |acc, (_, v)| Ok(acc.wrapping_add(decode(v)?)))
    }

    fn isolation(&self) -> &'static str {
        self.db.options().isolation.name()
    }

    fn scan(&self, start: u64, len: u64) -> Result<u64, String> {
        let snap = self.db.begin_read().map_err(|e| e.to_string())?;
        let rows = snap.range(&self.table, start.to_be_bytes()..).map_err(|e| e.to_string())?;
        let mut bad = None;
        let keys = rows.take(len as usize).map(|row| match row {
            Ok((k, v)) => {
                if let Err(e) = decode(&v) {
                    bad.get_or_insert(e);
                }
                k.try_into().map_or(0, u64::from_be_bytes)
            }
            Err(e) => {
                bad.get_or_insert(e.to_string());
                0
            }
        });
        let n = check_scan(start, len, keys)?;
        bad.map_or(Ok(n), Err)
    }

    fn insert(&self, key: u64) -> Result<u64, String> {
        let mut runs = 0u64;
        self.db
            .transaction(|txn| {
                runs += 1;
                txn.insert(&self.table, key.to_be_bytes(), 1u64.to_le_bytes())
            })
            .map_err(|e| e.to_string())?;
        Ok(runs - 1)
    }

    fn churn_step(&self, from: u64, to: u64, step: Churn) -> Result<(), String> {
        self.db
            .transaction(|txn| {
                for k in from..to {
                    let key = k.to_be_bytes();
                    match step {
                        Churn::OverwriteAll => txn.put(&self.table, key, 1u64.to_le_bytes())?,
                        Churn::DeleteEven if k % 2 == 0 => {
                            txn.delete(&self.table, key)?;
                        }
                        Churn::InsertEven if k % 2 == 0 => {
                            txn.insert(&self.table, key, 1u64.to_le_bytes())?
                        }
                        _ => {}
                    }
                }
                Ok(())
            })
            .map_err(|e| e.to_string())
    }

    fn hold_snapshot(&self) -> Option<Result<Box<dyn std::any::Any + Send>, String>> {
        Some(
            self.db
                .begin_read()
                .map(|s| Box::new(s) as Box<dyn std::any::Any + Send>)
                .map_err(|e| e.to_string()),
        )
    }

    fn live_versions(&self) -> Option<u64> {
        Some(self.db.stats().live_versions)
    }

    fn read(&self, key: u64) -> Result<Option<u64>, String> {
        let snap = self.db.begin_read().map_err(|e| e.to_string())?;
        snap.get_with(&self.table, key.to_be_bytes(), |v| v.map(decode).transpose())
            .map_err(|e| e.to_string())?
    }

    fn write(&self, key: u64, value: u64) -> Result<u64, String> {
        let mut runs = 0u64;
        self.db
            .transaction(|txn| {
                runs += 1;
                txn.put(&self.table, key.to_be_bytes(), value.to_le_bytes())
            })
            .map_err(|e| e.to_string())?;
        Ok(runs - 1)
    }

    fn transfer(&self, from: u64, to: u64, amount: u64) -> Result<u64, String> {
        let mut runs = 0u64;
        let mut bad = None;
        self.db
            .transaction(|txn| {
                runs += 1;
                let get = |txn: &strata::Txn, k: u64| {
                    txn.get_with(&self.table, k.to_be_bytes(), |v| v.map(decode))
                };
                match (get(txn, from)?, get(txn, to)?) {
                    (Some(Ok(a)), Some(Ok(b))) => {
                        txn.put(
                            &self.table,
                            from.to_be_bytes(),
                            a.wrapping_sub(amount).to_le_bytes(),
                        )?;
                        txn.put(&self.table, to.to_be_bytes(), b.wrapping_add(amount).to_le_bytes())
                    }
                    other => {
                        bad = Some(format!("transfer {from} -> {to}: rows {other:?}"));
                        Ok(())
                    }
                }
            })
            .map_err(|e| e.to_string())?;
        match bad {
            Some(e) => Err(e),
            None => Ok(runs - 1),
        }
    }
}

struct MapEngine {
    map: DashMap<u64, u64, foldhash::fast::RandomState>,
}

impl Engine for MapEngine {
    fn increment(&self, key: u64) -> Result<u64, String> {
        let v = self.map.get(&key).map_or(0, |r| *r);
        self.map.insert(key, v + 1);
        Ok(0)
    }

    fn sum(&self) -> Result<u64, String> {
        Ok(self.map.iter().fold(0u64, |acc, e| acc.wrapping_add(*e.value())))
    }

    fn read(&self, key: u64) -> Result<Option<u64>, String> {
        Ok(self.map.get(&key).map(|r| *r))
    }

    fn write(&self, key: u64, value: u64) -> Result<u64, String> {
        self.map.insert(key, value);
        Ok(0)
    }

    fn transfer(&self, from: u64, to: u64, amount: u64) -> Result<u64, String> {
        // No txn: the limit; another thread can see (and break) the half-done transfer.
        let a = self.map.get(&from).map_or(0, |r| *r);
        self.map.insert(from, a.wrapping_sub(amount));
        let b = self.map.get(&to).map_or(0, |r| *r);
        self.map.insert(to, b.wrapping_add(amount));
        Ok(0)
    }

    /// The limit's scan: collect the keys from `start` on and sort them (no order in a map).
    fn scan(&self, start: u64, len: u64) -> Result<u64, String> {
        let mut keys: Vec<u64> =
            self.map.iter().map(|e| *e.key()).filter(|k| *k >= start).collect();
        keys.sort_unstable();
        check_scan(start, len, keys.into_iter().take(len as usize))
    }

    fn insert(&self, key: u64) -> Result<u64, String> {
        self.map.insert(key, 1);
        Ok(0)
    }

    fn churn_step(&self, from: u64, to: u64, step: Churn) -> Result<(), String> {
        for k in from..to {
            match step {
                Churn::OverwriteAll => drop(self.map.insert(k, 1)),
                Churn::DeleteEven if k % 2 == 0 => drop(self.map.remove(&k)),
                Churn::InsertEven if k % 2 == 0 => drop(self.map.insert(k, 1)),
                _ => {}
            }
        }
        Ok(())
    }

    fn isolation(&self) -> &'static str {
        "none"
    }

    fn transactional(&self) -> bool {
        false
    }
}

pub(super) fn make_engine(
    name: &str,
    spec: &Spec,
    disk: Option<&Disk>,
) -> Result<Box<dyn Engine>, String> {
    let (keys, initial) = (spec.keys, spec.initial);
    Ok(match name {
        "strata" | "strata-serializable" => {
            let isolation =
                if name == "strata" { Isolation::Snapshot } else { Isolation::Serializable };
            Box::new(StrataEngine::new(StoreKind::LockFree, isolation, keys, initial, disk)?)
        }
        "strata-merge" | "baseline-merge" => {
            let store =
                if name == "strata-merge" { StoreKind::LockFree } else { StoreKind::Baseline };
            let mut engine = StrataEngine::new(store, Isolation::Snapshot, keys, initial, disk)?;
            engine.merge = true;
            Box::new(engine)
        }
        "strata-sql" | "strata-sql-rmw" => {
            Box::new(sql::StrataSql::new(keys, initial, disk, name == "strata-sql-rmw")?)
        }
        "sqlite" => Box::new(sql::Sqlite::new(keys, initial, disk)?),
        "sqlrite" => {
            if disk.is_some() {
                return Err("the sqlrite engine runs in memory only (drop --path)".into());
            }
            Box::new(sqlrite::Sqlrite::new(keys, initial)?)
        }
        #[cfg(feature = "turso")]
        "turso" => {
            if disk.is_some() {
                return Err("the turso engine runs in memory only (drop --path)".into());
            }
            Box::new(turso::Turso::new(keys, initial)?)
        }
        #[cfg(not(feature = "turso"))]
        "turso" => {
            return Err("the turso engine is behind a cargo feature: cargo run --release \
                        -p strata-cli --features turso -- bench --engine turso"
                .into())
        }
        "baseline" => Box::new(StrataEngine::new(
            StoreKind::Baseline,
            Isolation::Snapshot,
            keys,
            initial,
            disk,
        )?),
        "map" => {
            let map = DashMap::with_capacity_and_hasher(keys as usize, Default::default());
            for k in 0..keys {
                map.insert(k, initial);
            }
            Box::new(MapEngine { map })
        }
        other => {
            return Err(format!(
                "unknown engine {other:?} (strata, strata-serializable, strata-merge, baseline, \
                 baseline-merge, map, strata-sql, strata-sql-rmw, sqlite, sqlrite, turso)"
            ))
        }
    })
}
