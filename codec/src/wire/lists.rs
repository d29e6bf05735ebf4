//! Lists and structs of fields: counted lists, field naming, and the
//! [`wire_struct!`](crate::wire_struct) macro messages are declared with.

use super::{Fields, WResult, Wire, WireError};

/// The name of `field` inside `prefix` (`prefix.field`, or `field` at the top).
pub fn field_name(prefix: &str, field: &str) -> String {
    if prefix.is_empty() {
        field.to_owned()
    } else {
        format!("{prefix}.{field}")
    }
}

/// Describes a list as `name.len` then each item as `name[i]`.
fn describe_list<T: Wire>(items: &[T], name: &str, fields: &mut Fields) {
    fields.push(&format!("{name}.len"), items.len());
    for (i, item) in items.iter().enumerate() {
        item.describe(&format!("{name}[{i}]"), fields);
    }
}

/// Reads `count` items one after another.
#[inline]
fn read_items<T: Wire>(input: &[u8], count: usize) -> WResult<'_, Vec<T>> {
    match T::FIXED_LEN {
        Some(len @ 1..) if len.saturating_mul(count) <= input.len() => {
            read_fixed_items(input, count, len)
        }
        _ => read_varying_items(input, count),
    }
}

/// Reads `count` items of `len` bytes each, known to be in `input`: one bounds check
/// for the list instead of one per field.
#[inline]
fn read_fixed_items<T: Wire>(input: &[u8], count: usize, len: usize) -> WResult<'_, Vec<T>> {
    let (list, rest) = input.split_at(len * count);
    let mut items = Vec::with_capacity(count);
    for (i, chunk) in list.chunks_exact(len).enumerate() {
        let (_, item) = T::read(chunk).map_err(|e| {
            // Point the error at the field in `input`, not in the chunk.
            let after = input.len() - (i + 1) * len;
            e.map(|e| WireError {
                remaining: e.remaining + after,
                ..e
            })
        })?;
        items.push(item);
    }
    Ok((rest, items))
}

/// Reads `count` items of varying length one after another.
fn read_varying_items<T: Wire>(mut input: &[u8], count: usize) -> WResult<'_, Vec<T>> {
    // Every item takes at least one byte, so the input bounds the allocation.
    let mut items = Vec::with_capacity(count.min(input.len()));
    for _ in 0..count {
        let (rest, item) = T::read(input)?;
        items.push(item);
        input = rest;
    }
    Ok((input, items))
}

/// A list preceded by a `u8` item count. Writing keeps at most 255 items, so the
/// count always matches what follows.
pub mod counted_u8 {
    use super::*;

    /// Reads the count, then that many items.
    pub fn read<T: Wire>(input: &[u8]) -> WResult<'_, Vec<T>> {
        let (input, count) = u8::read(input)?;
        read_items(input, usize::from(count))
    }

    /// Writes the count, then the items.
    pub fn write<T: Wire>(items: &[T], out: &mut Vec<u8>) {
        let count = items.len().min(usize::from(u8::MAX));
        out.push(count as u8);
        for item in &items[..count] {
            item.write(out);
        }
    }

    /// How many bytes [`write`](Wire::write) appends.
    pub fn wire_len<T: Wire>(items: &[T]) -> usize {
        1 + items_len(&items[..items.len().min(usize::from(u8::MAX))])
    }

    /// Describes the list.
    pub fn describe<T: Wire>(items: &[T], name: &str, fields: &mut Fields) {
        describe_list(items, name, fields);
    }
}

/// A list preceded by a `u32` item count.
pub mod counted_u32 {
    use super::*;

    /// Reads the count, then that many items.
    pub fn read<T: Wire>(input: &[u8]) -> WResult<'_, Vec<T>> {
        let (input, count) = u32::read(input)?;
        read_items(input, count as usize)
    }

    /// Writes the count, then the items.
    pub fn write<T: Wire>(items: &[T], out: &mut Vec<u8>) {
        (items.len() as u32).write(out);
        for item in items {
            item.write(out);
        }
    }

    /// How many bytes [`write`](Wire::write) appends.
    pub fn wire_len<T: Wire>(items: &[T]) -> usize {
        4 + items_len(items)
    }

    /// Describes the list.
    pub fn describe<T: Wire>(items: &[T], name: &str, fields: &mut Fields) {
        describe_list(items, name, fields);
    }
}

/// How many bytes `items` take, one after another.
pub fn items_len<T: Wire>(items: &[T]) -> usize {
    items.iter().map(Wire::wire_len).sum()
}

/// Reads exactly `count` items of a list whose count was read earlier.
pub fn read_list<T: Wire>(input: &[u8], count: usize) -> WResult<'_, Vec<T>> {
    read_items(input, count)
}

/// Describes a list the way the counted lists do.
pub fn describe_items<T: Wire>(items: &[T], name: &str, fields: &mut Fields) {
    describe_list(items, name, fields);
}

/// Defines a struct whose fields are read and written in declaration order.
///
/// A field reads with its type's [`Wire`] impl, or with a module of [`wire`](crate::wire) named
/// after `=` (for example `= counted_u8` for a list with a `u8` count).
#[macro_export]
macro_rules! wire_struct {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $(
                $(#[$fmeta:meta])*
                $fvis:vis $field:ident : $fty:ty $(= $with:ident)?
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Default)]
        $vis struct $name {
            $($(#[$fmeta])* $fvis $field: $fty,)*
        }

        impl $crate::wire::Wire for $name {
            const FIXED_LEN: Option<usize> =
                $crate::wire::fixed_len(&[$($crate::wire_struct!(@fixed $fty $(, $with)?)),*]);

            #[allow(unused_mut)]
            #[inline]
            fn read(mut input: &[u8]) -> $crate::wire::WResult<'_, Self> {
                $(
                    let (rest, $field) = $crate::wire_struct!(@read input, $fty $(, $with)?)?;
                    input = rest;
                )*
                Ok((input, $name { $($field,)* }))
            }

            #[allow(unused_variables)]
            #[inline]
            fn write(&self, out: &mut Vec<u8>) {
                $($crate::wire_struct!(@write self.$field, out, $fty $(, $with)?);)*
            }

            #[inline]
            fn wire_len(&self) -> usize {
                0 $(+ $crate::wire_struct!(@len self.$field, $fty $(, $with)?))*
            }

            #[allow(unused_variables)]
            fn describe(&self, prefix: &str, fields: &mut $crate::wire::Fields) {
                $(
                    let name = $crate::wire::field_name(prefix, stringify!($field));
                    $crate::wire_struct!(@describe self.$field, &name, fields, $fty $(, $with)?);
                )*
            }
        }

        #[cfg(any(test, feature = "sample"))]
        impl $crate::sample::Sample for $name {
            #[allow(unused_variables)]
            fn sample(rng: &mut $crate::sample::SampleRng) -> Self {
                $name { $($field: $crate::sample::Sample::sample(rng),)* }
            }
        }
    };
    (@read $input:ident, $fty:ty) => { <$fty as $crate::wire::Wire>::read($input) };
    (@read $input:ident, $fty:ty, $with:ident) => { $crate::wire::$with::read($input) };
    (@write $value:expr, $out:ident, $fty:ty) => { $crate::wire::Wire::write(&$value, $out) };
    (@write $value:expr, $out:ident, $fty:ty, $with:ident) => { $crate::wire::$with::write(&$value, $out) };
    (@fixed $fty:ty) => { <$fty as $crate::wire::Wire>::FIXED_LEN };
    (@fixed $fty:ty, $with:ident) => { None };
    (@len $value:expr, $fty:ty) => { $crate::wire::Wire::wire_len(&$value) };
    (@len $value:expr, $fty:ty, $with:ident) => { $crate::wire::$with::wire_len(&$value) };
    (@describe $value:expr, $name:expr, $fields:ident, $fty:ty) => {
        $crate::wire::Wire::describe(&$value, $name, $fields)
    };
    (@describe $value:expr, $name:expr, $fields:ident, $fty:ty, $with:ident) => {
        $crate::wire::$with::describe(&$value, $name, $fields)
    };
}
