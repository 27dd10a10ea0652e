#include "json.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64

typedef struct {
  const char *p;   // next byte to read
  const char *end; // one past the last byte
  const char *start;
  char *err;
  size_t err_len;
  bool failed;
} parser;

static void fail(parser *ps, const char *fmt, ...) {
  if (ps->failed) return; // keep the first error
  ps->failed = true;
  int n = snprintf(ps->err, ps->err_len, "at byte %zu: ", (size_t)(ps->p - ps->start));
  if (n < 0 || (size_t)n >= ps->err_len) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(ps->err + n, ps->err_len - (size_t)n, fmt, ap);
  va_end(ap);
}

static void skip_space(parser *ps) {
  while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
    ps->p++;
}

static json_value *new_value(parser *ps, json_kind kind) {
  json_value *v = calloc(1, sizeof *v);
  if (!v) fail(ps, "out of memory");
  else v->kind = kind;
  return v;
}

static bool literal(parser *ps, const char *word) {
  size_t n = strlen(word);
  if ((size_t)(ps->end - ps->p) >= n && memcmp(ps->p, word, n) == 0) {
    ps->p += n;
    return true;
  }
  return false;
}

static int hex4(parser *ps) {
  if (ps->end - ps->p < 4) return -1;
  int v = 0;
  for (int i = 0; i < 4; i++) {
    char c = *ps->p++;
    v <<= 4;
    if (c >= '0' && c <= '9') v |= c - '0';
    else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
    else return -1;
  }
  return v;
}

// Appends the UTF-8 encoding of `cp` at `out`, returning the bytes written.
static size_t put_utf8(char *out, uint32_t cp) {
  if (cp < 0x80) { out[0] = (char)cp; return 1; }
  if (cp < 0x800) {
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = (char)(0xE0 | (cp >> 12));
    out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  out[0] = (char)(0xF0 | (cp >> 18));
  out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
  out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
  out[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

// Parses a string whose opening quote is at ps->p. The decoded form is never longer
// than the source, so one buffer of the source's length is enough.
static char *parse_string(parser *ps) {
  ps->p++; // opening quote
  const char *begin = ps->p;
  char *out = malloc((size_t)(ps->end - begin) + 1);
  if (!out) { fail(ps, "out of memory"); return NULL; }
  size_t n = 0;
  while (ps->p < ps->end) {
    unsigned char c = (unsigned char)*ps->p;
    if (c == '"') {
      ps->p++;
      out[n] = '\0';
      return out;
    }
    if (c < 0x20) { fail(ps, "control character in a string"); break; }
    if (c != '\\') { out[n++] = (char)c; ps->p++; continue; }
    ps->p++;
    if (ps->p >= ps->end) break;
    char e = *ps->p++;
    switch (e) {
      case '"': out[n++] = '"'; break;
      case '\\': out[n++] = '\\'; break;
      case '/': out[n++] = '/'; break;
      case 'b': out[n++] = '\b'; break;
      case 'f': out[n++] = '\f'; break;
      case 'n': out[n++] = '\n'; break;
      case 'r': out[n++] = '\r'; break;
      case 't': out[n++] = '\t'; break;
      case 'u': {
        int hi = hex4(ps);
        if (hi < 0) { fail(ps, "bad \\u escape"); goto error; }
        uint32_t cp = (uint32_t)hi;
        if (hi >= 0xD800 && hi <= 0xDBFF) { // a surrogate pair: \uD83D\uDE00
          int lo = (literal(ps, "\\u")) ? hex4(ps) : -1;
          if (lo < 0xDC00 || lo > 0xDFFF) { fail(ps, "unpaired surrogate in a \\u escape"); goto error; }
          cp = 0x10000 + (((uint32_t)hi - 0xD800) << 10) + ((uint32_t)lo - 0xDC00);
        } else if (hi >= 0xDC00 && hi <= 0xDFFF) {
          fail(ps, "unpaired surrogate in a \\u escape");
          goto error;
        } else if (hi == 0) {
          fail(ps, "\\u0000 is not supported in strings");
          goto error;
        }
        n += put_utf8(out + n, cp);
        break;
      }
      default: fail(ps, "unknown escape \\%c", e); goto error;
    }
  }
  fail(ps, "unterminated string");
error:
  free(out);
  return NULL;
}

static bool parse_number(parser *ps, double *out) {
  // Check the JSON grammar first (strtod accepts more: hex, inf, leading '+').
  const char *q = ps->p;
  if (q < ps->end && *q == '-') q++;
  if (q >= ps->end) return false;
  if (*q == '0') q++;
  else if (*q >= '1' && *q <= '9') while (q < ps->end && *q >= '0' && *q <= '9') q++;
  else return false;
  if (q < ps->end && *q == '.') {
    q++;
    if (q >= ps->end || *q < '0' || *q > '9') return false;
    while (q < ps->end && *q >= '0' && *q <= '9') q++;
  }
  if (q < ps->end && (*q == 'e' || *q == 'E')) {
    q++;
    if (q < ps->end && (*q == '+' || *q == '-')) q++;
    if (q >= ps->end || *q < '0' || *q > '9') return false;
    while (q < ps->end && *q >= '0' && *q <= '9') q++;
  }
  // strtod needs a NUL-terminated copy: the input is a length-delimited buffer.
  size_t n = (size_t)(q - ps->p);
  char buf[64];
  if (n >= sizeof buf) return false;
  memcpy(buf, ps->p, n);
  buf[n] = '\0';
  errno = 0;
  *out = strtod(buf, NULL);
  if (errno == ERANGE && (*out > 1.0 || *out < -1.0)) return false; // overflow
  ps->p = q;
  return true;
}

static json_value *parse_value(parser *ps, int depth);

static json_value *parse_array(parser *ps, int depth) {
  json_value *v = new_value(ps, JSON_ARRAY);
  if (!v) return NULL;
  ps->p++; // '['
  skip_space(ps);
  if (ps->p < ps->end && *ps->p == ']') { ps->p++; return v; }
  size_t cap = 0;
  for (;;) {
    json_value *item = parse_value(ps, depth + 1);
    if (!item) break;
    if (v->len == cap) {
      cap = cap ? cap * 2 : 4;
      json_value **grown = realloc(v->items, cap * sizeof *grown);
      if (!grown) { json_free(item); fail(ps, "out of memory"); break; }
      v->items = grown;
    }
    v->items[v->len++] = item;
    skip_space(ps);
    if (ps->p < ps->end && *ps->p == ',') { ps->p++; continue; }
    if (ps->p < ps->end && *ps->p == ']') { ps->p++; return v; }
    fail(ps, "expected ',' or ']' in an array");
    break;
  }
  json_free(v);
  return NULL;
}

static json_value *parse_object(parser *ps, int depth) {
  json_value *v = new_value(ps, JSON_OBJECT);
  if (!v) return NULL;
  ps->p++; // '{'
  skip_space(ps);
  if (ps->p < ps->end && *ps->p == '}') { ps->p++; return v; }
  size_t cap = 0;
  for (;;) {
    skip_space(ps);
    if (ps->p >= ps->end || *ps->p != '"') { fail(ps, "expected a member name in quotes"); break; }
    char *key = parse_string(ps);
    if (!key) break;
    for (size_t i = 0; i < v->len; i++) {
      if (strcmp(v->members[i].key, key) == 0) {
        fail(ps, "member \"%s\" appears twice", key);
        free(key);
        goto error;
      }
    }
    skip_space(ps);
    if (ps->p >= ps->end || *ps->p != ':') { free(key); fail(ps, "expected ':' after a member name"); break; }
    ps->p++;
    json_value *item = parse_value(ps, depth + 1);
    if (!item) { free(key); break; }
    if (v->len == cap) {
      cap = cap ? cap * 2 : 4;
      json_member *grown = realloc(v->members, cap * sizeof *grown);
      if (!grown) { free(key); json_free(item); fail(ps, "out of memory"); break; }
      v->members = grown;
    }
    v->members[v->len].key = key;
    v->members[v->len].value = item;
    v->len++;
    skip_space(ps);
    if (ps->p < ps->end && *ps->p == ',') { ps->p++; continue; }
    if (ps->p < ps->end && *ps->p == '}') { ps->p++; return v; }
    fail(ps, "expected ',' or '}' in an object");
    break;
  }
error:
  json_free(v);
  return NULL;
}

static json_value *parse_value(parser *ps, int depth) {
  if (depth > MAX_DEPTH) { fail(ps, "nested deeper than %d levels", MAX_DEPTH); return NULL; }
  skip_space(ps);
  if (ps->p >= ps->end) { fail(ps, "unexpected end of input"); return NULL; }
  json_value *v;
  switch (*ps->p) {
    case '{': return parse_object(ps, depth);
    case '[': return parse_array(ps, depth);
    case '"': {
      char *s = parse_string(ps);
      if (!s) return NULL;
      v = new_value(ps, JSON_STRING);
      if (!v) { free(s); return NULL; }
      v->string = s;
      return v;
    }
    case 't':
    case 'f': {
      bool b = *ps->p == 't';
      if (literal(ps, b ? "true" : "false")) {
        v = new_value(ps, JSON_BOOL);
        if (v) v->boolean = b;
        return v;
      }
      break;
    }
    case 'n':
      if (literal(ps, "null")) return new_value(ps, JSON_NULL);
      break;
    default: {
      double d;
      if (parse_number(ps, &d)) {
        v = new_value(ps, JSON_NUMBER);
        if (v) v->number = d;
        return v;
      }
      if (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9')) {
        fail(ps, "malformed or out-of-range number");
        return NULL;
      }
    }
  }
  fail(ps, "unexpected character '%c'", *ps->p);
  return NULL;
}

json_value *json_parse(const char *text, size_t len, char *err, size_t err_len) {
  parser ps = {.p = text, .end = text + len, .start = text, .err = err, .err_len = err_len};
  if (err_len) err[0] = '\0';
  json_value *root = parse_value(&ps, 0);
  if (root) {
    skip_space(&ps);
    if (ps.p != ps.end) {
      fail(&ps, "unexpected text after the document");
      json_free(root);
      root = NULL;
    }
  }
  return root;
}

void json_free(json_value *v) {
  if (!v) return;
  free(v->string);
  for (size_t i = 0; v->kind == JSON_ARRAY && i < v->len; i++) json_free(v->items[i]);
  for (size_t i = 0; v->kind == JSON_OBJECT && i < v->len; i++) {
    free(v->members[i].key);
    json_free(v->members[i].value);
  }
  free(v->items);
  free(v->members);
  free(v);
}

const json_value *json_get(const json_value *v, const char *key) {
  if (!v || v->kind != JSON_OBJECT) return NULL;
  for (size_t i = 0; i < v->len; i++)
    if (strcmp(v->members[i].key, key) == 0) return v->members[i].value;
  return NULL;
}

const char *json_kind_name(json_kind kind) {
  switch (kind) {
    case JSON_NULL: return "null";
    case JSON_BOOL: return "a boolean";
    case JSON_NUMBER: return "a number";
    case JSON_STRING: return "a string";
    case JSON_ARRAY: return "an array";
    case JSON_OBJECT: return "an object";
  }
  return "a value";
}
