// Python str semantics over UTF-8 bytes: what the Jinja renderer needs from Python's string
// type (code point length and slicing, strip/split/replace, repr, json.dumps escaping).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace strata::tmpl {

// Decodes the code point at `pos` and advances `pos`; a malformed byte decodes as itself
// (Latin-1) and advances one byte, so every byte string round-trips.
char32_t decode_code_point(std::string_view text, size_t& pos);
void append_code_point(std::string& out, char32_t code_point);
std::vector<char32_t> to_code_points(std::string_view text);
std::string from_code_points(const std::vector<char32_t>& code_points);

// len(s): code points, not bytes.
size_t code_point_length(std::string_view text);
// Byte offset of each code point, plus text.size() at the end (size = length + 1).
std::vector<size_t> code_point_offsets(std::string_view text);

bool py_isspace(char32_t code_point);  // str.isspace / the default of str.strip and str.split

// str.strip / lstrip / rstrip; `chars` absent strips whitespace.
std::string py_strip(std::string_view text, const std::optional<std::string>& chars, bool left, bool right);
// str.split / str.rsplit; `sep` absent splits on runs of whitespace. max_split < 0: no limit.
std::vector<std::string> py_split(std::string_view text, const std::optional<std::string>& sep, int64_t max_split);
std::vector<std::string> py_rsplit(std::string_view text, const std::optional<std::string>& sep, int64_t max_split);
// str.splitlines(keepends) with Python's full set of line boundaries.
std::vector<std::string> py_splitlines(std::string_view text, bool keep_ends);
// str.replace; max_count < 0 replaces all. An empty `old` inserts between code points.
std::string py_replace(std::string_view text, std::string_view old_text, std::string_view new_text, int64_t max_count);
// str.find / str.rfind: code point index or -1.
int64_t py_find(std::string_view text, std::string_view sub, bool reverse);
int64_t py_count(std::string_view text, std::string_view sub);

// Case mapping covers ASCII, Latin, Greek, Cyrillic, Armenian and fullwidth Latin; other
// scripts pass through unchanged.
std::string py_upper(std::string_view text);
std::string py_lower(std::string_view text);
std::string py_capitalize(std::string_view text);  // str.capitalize
std::string py_title(std::string_view text);       // str.title (a letter after a non-letter starts a word)
std::string jinja_title(std::string_view text);    // Jinja's |title: words start after [-\s({[<]
bool py_isupper(std::string_view text);
bool py_islower(std::string_view text);
// str.isalpha / str.isalnum of one code point (and so regex \w, less '_'), approximated by
// the cased scripts plus Hebrew, Arabic, Devanagari, Thai, kana, CJK and Hangul.
bool py_isalpha(char32_t code_point);
bool py_isalnum(char32_t code_point);

std::string py_repr_string(std::string_view text);  // repr(s), quotes chosen as Python does
// json.dumps escaping of a string, quotes included.
std::string json_quote(std::string_view text, bool ensure_ascii);
std::string html_escape(std::string_view text);  // markupsafe.escape

// repr(float): the shortest round-trip digits, exponent form below 1e-4 and from 1e16 on.
std::string py_float_repr(double value);

}  // namespace strata::tmpl
