//! Encoder versions as a table of behaviours (`versions!`), shared by the klauspost flate
//! family and klauspost zstd.

/// Declares a family's versions: a newtype over the row index (the id stored in blob
/// records, so rows are only ever appended), one named constant per version, a struct with
/// one field per behaviour that differs between versions, and the rows. A new version is a
/// constant and a row; a new behaviour is a field, a value in every row, and the code that
/// reads it where the encoder decides.
macro_rules! versions {
    (
        $(#[$meta:meta])*
        pub struct $name:ident;
        versions {
            $($(#[$vmeta:meta])* $version:ident = $id:literal,)*
        }
        behaviour $behaviour:ident {
            $($(#[$fmeta:meta])* $field:ident: $ty:ty,)*
        }
        rows [
            $(($($value:expr),* $(,)?),)*
        ]
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(u8);

        /// How one version differs from the others, as data.
        struct $behaviour {
            name: &'static str,
            $($(#[$fmeta])* $field: $ty,)*
        }

        impl $behaviour {
            #[allow(clippy::too_many_arguments)]
            const fn row(name: &'static str, $($field: $ty),*) -> $behaviour {
                $behaviour { name, $($field),* }
            }
        }

        /// Every version, oldest first; the index is the stored id.
        const VERSIONS: &[$behaviour] = &[$($behaviour::row($($value),*),)*];

        // The versions keep the names they had as enum variants.
        #[allow(non_upper_case_globals)]
        impl $name {
            $($(#[$vmeta])* pub const $version: $name = $name($id);)*
        }

        // Each version's id is its row.
        const _: () = {
            let ids = [$($id),*];
            assert!(ids.len() == VERSIONS.len(), "one row per version");
            let mut i = 0;
            while i < ids.len() {
                assert!(ids[i] as usize == i, "version ids are the order of the rows");
                i += 1;
            }
        };

        impl $name {
            /// Every version, oldest first.
            pub const ALL: [$name; [$($name::$version),*].len()] = [$($name::$version),*];

            fn behaviour(self) -> &'static $behaviour {
                &VERSIONS[self.0 as usize]
            }

            /// The id stored in blob records.
            pub fn id(self) -> u8 {
                self.0
            }

            pub fn from_id(id: u8) -> Option<$name> {
                ((id as usize) < VERSIONS.len()).then_some($name(id))
            }

            /// A short name for summaries: `klauspost 1.20`, `go1.27`.
            pub fn name(self) -> &'static str {
                self.behaviour().name
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

pub(crate) use versions;
