//! [`Content`]: what a copy puts on the clipboard, and the format names it is offered under.

use crate::ClipboardError;

/// The format name of UTF-8 text on X11 (the `UTF8_STRING` atom); Windows' `CF_UNICODETEXT`.
pub const TEXT: &str = "UTF8_STRING";
/// The format name of a PNG image (a MIME type, as browsers and image viewers use it).
pub const PNG: &str = "image/png";

/// The eight bytes every PNG file starts with.
const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// What a copy puts on the clipboard.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Content {
    /// Text, offered as `UTF8_STRING`, `text/plain;charset=utf-8` and `TEXT` (and as `STRING`
    /// when it is ASCII, which is the same bytes in Latin-1).
    Text(String),
    /// A PNG image, offered as `image/png`. Must start with the PNG signature.
    Png(Vec<u8>),
    /// Bytes under a format name of the caller's choosing: an X atom name or a MIME type such
    /// as `application/x-myapp`, the equivalent of a `RegisterClipboardFormat` name.
    Bytes {
        /// The format name.
        format: String,
        /// The data, served byte for byte.
        data: Vec<u8>,
    },
}

impl Content {
    /// Text content.
    pub fn text(text: impl Into<String>) -> Content {
        Content::Text(text.into())
    }

    /// Bytes under a custom format name.
    pub fn bytes(format: impl Into<String>, data: impl Into<Vec<u8>>) -> Content {
        Content::Bytes {
            format: format.into(),
            data: data.into(),
        }
    }

    /// The format names this content is offered under, with its bytes.
    ///
    /// # Errors
    /// [`ClipboardError::NotPng`] for a `Png` that is not one; [`ClipboardError::InvalidFormat`]
    /// for an empty format name or one with a NUL byte.
    pub(crate) fn into_formats(self) -> Result<Vec<(String, Vec<u8>)>, ClipboardError> {
        Ok(match self {
            Content::Text(text) => {
                let mut names = vec![TEXT, "text/plain;charset=utf-8", "TEXT"];
                if text.is_ascii() {
                    names.push("STRING");
                }
                let bytes = text.into_bytes();
                names
                    .into_iter()
                    .map(|n| (n.to_owned(), bytes.clone()))
                    .collect()
            }
            Content::Png(data) => {
                if !data.starts_with(PNG_SIGNATURE) {
                    return Err(ClipboardError::NotPng);
                }
                vec![(PNG.to_owned(), data)]
            }
            Content::Bytes { format, data } => {
                if format.is_empty() || format.contains('\0') {
                    return Err(ClipboardError::InvalidFormat(format));
                }
                vec![(format, data)]
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_offered_under_the_usual_names() {
        let formats = Content::text("hi").into_formats().unwrap();
        let names: Vec<_> = formats.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["UTF8_STRING", "text/plain;charset=utf-8", "TEXT", "STRING"]
        );
        let formats = Content::text("grüß").into_formats().unwrap();
        assert!(formats.iter().all(|(n, _)| n != "STRING"));
    }

    #[test]
    fn png_and_format_names_are_checked() {
        assert!(matches!(
            Content::Png(b"GIF89a".to_vec()).into_formats(),
            Err(ClipboardError::NotPng)
        ));
        assert!(Content::Png(PNG_SIGNATURE.to_vec()).into_formats().is_ok());
        assert!(matches!(
            Content::bytes("", b"x".to_vec()).into_formats(),
            Err(ClipboardError::InvalidFormat(_))
        ));
    }
}
