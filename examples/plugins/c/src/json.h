// A small JSON reader, enough for a plugin's configuration: it parses a whole document
// into a tree of values and reports the first syntax error with its byte offset.
// Not for large or untrusted-at-scale input: it recurses once per nesting level (capped).
#ifndef PHAROS_EXAMPLE_JSON_H
#define PHAROS_EXAMPLE_JSON_H

#include <stdbool.h>
#include <stddef.h>

typedef enum {
  JSON_NULL,
  JSON_BOOL,
  JSON_NUMBER,
  JSON_STRING,
  JSON_ARRAY,
  JSON_OBJECT,
} json_kind;

typedef struct json_value json_value;

// One member of an object, in document order.
typedef struct {
  char *key;
  json_value *value;
} json_member;

struct json_value {
  json_kind kind;
  bool boolean;       // JSON_BOOL
  double number;      // JSON_NUMBER
  char *string;       // JSON_STRING: NUL-terminated UTF-8 (a \u0000 escape is rejected)
  size_t len;         // JSON_ARRAY: items; JSON_OBJECT: members
  json_value **items; // JSON_ARRAY
  json_member *members; // JSON_OBJECT
};

// Parses `len` bytes of `text`. On success returns the root value (free it with
// json_free). On failure returns NULL and writes a message into `err` (`err_len` bytes).
json_value *json_parse(const char *text, size_t len, char *err, size_t err_len);

void json_free(json_value *v);

// The member named `key` of an object, or NULL when absent or when `v` is no object.
const json_value *json_get(const json_value *v, const char *key);

// The name of a value's kind, for error messages ("a string", "an array", ...).
const char *json_kind_name(json_kind kind);

#endif
