//! The JSON contract, checked: every document and line the binary prints is parsed with a
//! duplicate-key check and validated against its JSON Schema in `docs/schema/` (draft 2020-12,
//! formats asserted), and a stream's `seq` and `cause_seq` are checked across lines.
//!
//! The one helper every CLI test file uses (`mod schema;`), and the unit tests of
//! `src/output/json.rs` too (by `#[path]`). The schemas are compiled into the test binary, so a
//! change to one rebuilds the tests.

#![allow(dead_code)] // Each test file uses part of it.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::{Mutex, OnceLock};

use jsonschema::{Registry, Validator};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Where the schemas say they live (their `$id`s); `$ref`s between them are relative.
pub const BASE: &str = "https://example.invalid/netreach/docs/schema/";

/// Every schema file, by name.
const FILES: [(&str, &str); 6] = [
    (
        "defs.json",
        include_str!("../../../../docs/schema/defs.json"),
    ),
    (
        "status.json",
        include_str!("../../../../docs/schema/status.json"),
    ),
    (
        "watch.json",
        include_str!("../../../../docs/schema/watch.json"),
    ),
    (
        "reach.json",
        include_str!("../../../../docs/schema/reach.json"),
    ),
    (
        "reach-watch.json",
        include_str!("../../../../docs/schema/reach-watch.json"),
    ),
    (
        "probe.json",
        include_str!("../../../../docs/schema/probe.json"),
    ),
];

/// Which shape a text must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Schema {
    /// `status --json`.
    Status,
    /// A line of `watch --json`.
    Watch,
    /// `reach --json`.
    Reach,
    /// A line of `reach --watch --json`.
    ReachWatch,
    /// `probe --json`.
    Probe,
    /// One definition of `defs.json` (`connectivity_reason`, ...), for the unit tests.
    Def(&'static str),
}

impl Schema {
    fn uri(self) -> String {
        match self {
            Schema::Status => format!("{BASE}status.json"),
            Schema::Watch => format!("{BASE}watch.json"),
            Schema::Reach => format!("{BASE}reach.json"),
            Schema::ReachWatch => format!("{BASE}reach-watch.json"),
            Schema::Probe => format!("{BASE}probe.json"),
            Schema::Def(name) => format!("{BASE}defs.json#/$defs/{name}"),
        }
    }
}

/// Parses `text` as one JSON value, failing on a key repeated in any object (which
/// `serde_json::Value` would silently collapse to its last value) and on trailing text.
pub fn parse_strict(text: &str) -> Result<Value, String> {
    let mut de = serde_json::Deserializer::from_str(text);
    let Strict(v) = Strict::deserialize(&mut de).map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())?;
    Ok(v)
}

/// What is wrong with `v` by `schema`, one line per error; empty when it is valid.
pub fn errors(schema: Schema, v: &Value) -> Vec<String> {
    validator(schema)
        .iter_errors(v)
        .map(|e| format!("at {:?}: {e}", e.instance_path().as_str()))
        .collect()
}

/// Parses one document or line of the binary's output, and panics unless it has no
/// repeated key and is valid by `schema`.
pub fn check(schema: Schema, text: &str) -> Value {
    let v = parse_strict(text).unwrap_or_else(|e| panic!("{schema:?}: {e}: {text}"));
    check_value(schema, &v);
    v
}

/// Panics unless `v` is valid by `schema`.
pub fn check_value(schema: Schema, v: &Value) {
    let errors = errors(schema, v);
    assert!(
        errors.is_empty(),
        "not valid by the {schema:?} schema:\n  {}\n{v}",
        errors.join("\n  ")
    );
}

/// The lines of one stream (`watch --json`, `reach --watch --json`), checked one by one and
/// against each other: `seq` strictly increasing over the lines that have one, `cause_seq`
/// below its line's `seq` and, in `watch`, naming a model change the stream showed (or one the
/// `ready` state includes).
#[derive(Debug)]
pub struct Stream {
    schema: Schema,
    last_seq: Option<u64>,
    /// The seq of the `ready` line: causes up to it are in its state.
    ready: Option<u64>,
    /// The seqs of the model changes shown.
    model: BTreeSet<u64>,
}

impl Stream {
    pub fn new(schema: Schema) -> Stream {
        Stream {
            schema,
            last_seq: None,
            ready: None,
            model: BTreeSet::new(),
        }
    }

    /// Checks one line and returns it.
    pub fn line(&mut self, text: &str) -> Value {
        let v = check(self.schema, text);
        let ty = v["type"].as_str().unwrap_or_default().to_owned();
        if let Some(seq) = v.get("seq").and_then(Value::as_u64) {
            if let Some(last) = self.last_seq {
                assert!(seq > last, "seq {seq} after {last}: {text}");
            }
            self.last_seq = Some(seq);
            if let Some(cause) = v.get("cause_seq").and_then(Value::as_u64) {
                assert!(cause < seq, "cause_seq {cause} not below seq {seq}: {text}");
                if self.schema == Schema::Watch {
                    let shown =
                        self.model.contains(&cause) || self.ready.is_some_and(|r| cause <= r);
                    assert!(
                        shown,
                        "cause_seq {cause} names no model change seen: {text}"
                    );
                }
            } else if ty == "ready" {
                self.ready = Some(seq);
            } else {
                self.model.insert(seq);
            }
        }
        v
    }
}

/// The validators, built once per schema.
fn validator(schema: Schema) -> &'static Validator {
    static ALL: OnceLock<Mutex<HashMap<Schema, &'static Validator>>> = OnceLock::new();
    let mut all = ALL
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    all.entry(schema).or_insert_with(|| {
        let root = serde_json::json!({ "$ref": schema.uri() });
        let v = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .with_registry(registry())
            .should_validate_formats(true)
            .build(&root)
            .unwrap_or_else(|e| panic!("the {schema:?} schema does not compile: {e}"));
        Box::leak(Box::new(v))
    })
}

/// Every schema file, by its `$id`, which each must state.
fn registry() -> &'static Registry<'static> {
    static REGISTRY: OnceLock<Registry<'static>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut builder = Registry::new();
        for (name, text) in FILES {
            let v: Value = parse_strict(text).unwrap_or_else(|e| panic!("{name}: {e}"));
            let id = format!("{BASE}{name}");
            assert_eq!(v["$id"], id.as_str(), "{name} states its $id");
            assert_eq!(
                v["$schema"], "https://json-schema.org/draft/2020-12/schema",
                "{name} is draft 2020-12"
            );
            builder = builder
                .add(&id, v)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        builder
            .prepare()
            .unwrap_or_else(|e| panic!("the schemas do not resolve: {e}"))
    })
}

/// A `Value` that refuses a repeated key.
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Strict, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(n.into())
    }

    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(n.into())
    }

    fn visit_f64<E>(self, n: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_owned()))
    }

    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(de::Error::custom(format_args!("duplicate key {key:?}")));
            }
            let Strict(v) = map.next_value()?;
            object.insert(key, v);
        }
        Ok(Value::Object(object))
    }
}
