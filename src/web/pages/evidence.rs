//! Evidence is hostile: downloads are attachments named by a sanitised
//! name; inline previews only for images whose type is re-checked from
//! their bytes on every request (PNG, JPEG, GIF, WebP; never SVG).

use super::*;

// ---------------------------------------------------------------- evidence

/// A file name safe in a header: letters, digits, `.-_`, at most 100.
fn safe_filename(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    let trimmed = cleaned.trim_start_matches('.');
    if trimmed.is_empty() {
        "evidence.bin".into()
    } else {
        trimmed.to_owned()
    }
}

fn evidence_headers(h: &mut HeaderMap) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(EVIDENCE_CSP),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
}

pub(crate) async fn download(
    State(ui): State<S>,
    a: Analyst,
    Path((reference, object)): Path<(String, String)>,
) -> Result<Response, UiError> {
    let case = a.open(&ui, &reference).await?;
    let (info, data) = ui
        .cases
        .evidence(&case, &object, EvidenceUse::Download)
        .await?;
    Ok(hostile_download(
        data,
        info.name.as_deref().unwrap_or("evidence.bin"),
    ))
}

/// Bytes from a reporter (evidence, an original mail) as a download only:
/// an attachment of no particular type, under a sanitised name, with the
/// sandbox policy in case a browser renders it anyway.
pub(crate) fn hostile_download(data: Vec<u8>, name: &str) -> Response {
    let name = safe_filename(name);
    let mut r = data.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    evidence_headers(h);
    r
}

pub(crate) async fn preview(
    State(ui): State<S>,
    a: Analyst,
    Path((reference, object)): Path<(String, String)>,
) -> Result<Response, UiError> {
    let case = a.open(&ui, &reference).await?;
    let (_, data) = ui
        .cases
        .evidence(&case, &object, EvidenceUse::Preview)
        .await?;
    // The type comes from the bytes, now, not from what was stored.
    let Some(kind) = crate::intake::mime::sniff_image(&data).filter(|t| PREVIEWABLE.contains(t))
    else {
        return Err(UiError::NotFound);
    };
    let mut r = data.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("inline"),
    );
    evidence_headers(h);
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn download_names_cannot_break_the_header() {
        assert_eq!(safe_filename("a\"b\r\nc.txt"), "a_b__c.txt");
        assert_eq!(safe_filename("../../etc/passwd"), "_.._etc_passwd");
        assert_eq!(safe_filename(""), "evidence.bin");
        assert_eq!(safe_filename("rapport æøå.pdf"), "rapport____.pdf");
    }
}
