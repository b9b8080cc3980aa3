//! Sharing equal values handed out one after the other.

use std::sync::Arc;

/// The last value handed out, shared by whoever gets an equal one next.
///
/// The targets one change affects mostly get the same answer (the route the kernel matched)
/// and the same verdict, one after the other, so remembering one value is enough to share
/// them: 10,000 targets through one route hold one route and one verdict instead of 10,000
/// copies, which were most of a target's memory.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use netreach_core::Interned;
///
/// let mut names = Interned::default();
/// let a = names.get(String::from("eth0"));
/// let b = names.get(String::from("eth0"));
/// assert!(Arc::ptr_eq(&a, &b));
/// let c = names.get(String::from("wlan0"));
/// assert!(!Arc::ptr_eq(&a, &c));
/// ```
#[derive(Debug, Clone)]
pub struct Interned<T: ?Sized>(Option<Arc<T>>);

impl<T: ?Sized> Default for Interned<T> {
    fn default() -> Self {
        Interned(None)
    }
}

impl<T: PartialEq> Interned<T> {
    /// `value` behind an `Arc`: the last one handed out when it is equal, a new one otherwise
    /// (which is remembered in its place).
    pub fn get(&mut self, value: T) -> Arc<T> {
        match &self.0 {
            Some(last) if **last == value => Arc::clone(last),
            _ => Arc::clone(self.0.insert(Arc::new(value))),
        }
    }

    /// The same for a borrowed value, cloned only when it is not the last one.
    pub fn get_cloned(&mut self, value: &T) -> Arc<T>
    where
        T: Clone,
    {
        match &self.0 {
            Some(last) if **last == *value => Arc::clone(last),
            _ => Arc::clone(self.0.insert(Arc::new(value.clone()))),
        }
    }
}

impl<T: ?Sized + PartialEq> Interned<T> {
    /// The same for an owned value of an unsized type (a `Vec<u32>` for an `Arc<[u32]>`):
    /// moved behind a new `Arc` only when it is not the last one.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use netreach_core::Interned;
    ///
    /// let mut paths: Interned<[u32]> = Interned::default();
    /// let a = paths.get_owned(vec![2, 3]);
    /// assert!(Arc::ptr_eq(&a, &paths.get_owned(vec![2, 3])));
    /// ```
    pub fn get_owned<V>(&mut self, value: V) -> Arc<T>
    where
        V: std::ops::Deref<Target = T> + Into<Arc<T>>,
    {
        match &self.0 {
            Some(last) if **last == *value => Arc::clone(last),
            _ => Arc::clone(self.0.insert(value.into())),
        }
    }
}
