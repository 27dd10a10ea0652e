// A Pharos exporter plugin in C.
//
// It simulates the storage volumes of one site: for every volume listed in its
// configuration it reports the size and the space used (gauges), the writes so far (a
// counter) and the size of those writes (a histogram), plus how often it was collected and
// when (read from the WASI wall clock). Replace `simulate` with real measurements and the
// rest stays the same.
//
// The bindings (exporter.h, exporter.c, exporter_component_type.o) are generated from
// wit/ by `wit-bindgen c` at build time; see ../README.md. How they map the WIT types:
//   - a record is a struct, a `list<T>` a `{ T *ptr; size_t len; }` struct and a `string`
//     an `exporter_string_t` (UTF-8 bytes, not NUL-terminated);
//   - a variant is `{ uint8_t tag; union { ... } val; }` with a #define per case;
//   - an `option<T>` is `{ bool is_some; T val; }`;
//   - a function returning `result<T, E>` returns `bool` (true for ok) and writes the
//     value through `ret` or the error through `err`.
// Memory: an exported function owns its arguments (free them) and hands everything it
// returns to the bindings, which free it with free() after the host has copied it. So
// every returned string and list must come from malloc, never a literal or a static.

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "exporter.h"
#include "json.h"

#define MAX_VOLUMES 64
#define NAME_MAX_LEN 128

// Upper bounds of the write-size histogram, in bytes; +Inf is implied by the count.
static const double WRITE_BUCKETS[] = {4096, 65536, 262144, 1048576};
#define N_BUCKETS (sizeof WRITE_BUCKETS / sizeof WRITE_BUCKETS[0])

typedef struct {
  char name[NAME_MAX_LEN + 1];
  uint64_t size_bytes;
  uint64_t used_bytes;
  uint64_t writes;
  uint64_t bucket_counts[N_BUCKETS]; // cumulative: a write counts in every bucket it fits
  uint64_t write_count;
  double write_sum;
} volume;

// Everything kept between calls. It lives as long as the component instance; the host
// may replace the instance at any time, and the counters then start again from zero
// (which Prometheus' rate() treats as a counter reset).
static struct {
  bool configured;
  char site[NAME_MAX_LEN + 1];
  size_t n_volumes;
  volume volumes[MAX_VOLUMES];
  uint64_t rng;
  uint64_t collects;
} state;

// ---- small helpers around the generated types ----

static exporter_string_t str(const char *s) {
  exporter_string_t r;
  exporter_string_dup(&r, s); // malloc'd copy: the bindings free it after the call
  return r;
}

static void *xcalloc(size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size);
  if (!p) abort(); // out of memory: trap, the host replaces the instance
  return p;
}

static void set_error(pharos_plugin_types_plugin_error_t *err, uint8_t tag, const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  err->tag = tag;
  // All three cases carry a string at the same place in the union.
  err->val.invalid_config = str(buf);
}

static void log_line(pharos_plugin_log_level_t level, const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  exporter_string_t msg;
  exporter_string_set(&msg, buf); // an import only borrows its arguments: no copy needed
  pharos_plugin_log_log(level, &msg);
}

// A label set of `n` name/value pairs.
static pharos_plugin_types_labels_t labels(size_t n, ...) {
  pharos_plugin_types_labels_t set = {xcalloc(n, sizeof *set.ptr), n};
  va_list ap;
  va_start(ap, n);
  for (size_t i = 0; i < n; i++) {
    set.ptr[i].name = str(va_arg(ap, const char *));
    set.ptr[i].value = str(va_arg(ap, const char *));
  }
  va_end(ap);
  return set;
}

static const pharos_plugin_types_option_timestamp_ms_t AT_SCRAPE_TIME = {.is_some = false};

static pharos_plugin_types_metric_family_t family(const char *name, const char *help, const char *unit) {
  pharos_plugin_types_metric_family_t f = {0};
  f.name = str(name);
  f.help = str(help);
  if (unit) {
    f.unit.is_some = true;
    f.unit.val = str(unit);
  }
  return f;
}

// ---- configuration ----

// Copies a non-empty string member into `out`, or explains what is wrong in `why`.
static bool get_name(const json_value *obj, const char *key, const char *where, char *out, char *why, size_t why_len) {
  const json_value *v = json_get(obj, key);
  if (!v) {
    snprintf(why, why_len, "%s\"%s\" is required", where, key);
    return false;
  }
  if (v->kind != JSON_STRING || v->string[0] == '\0') {
    snprintf(why, why_len, "%s\"%s\" must be a non-empty string, not %s", where, key,
             v->kind == JSON_STRING ? "an empty one" : json_kind_name(v->kind));
    return false;
  }
  if (strlen(v->string) > NAME_MAX_LEN) {
    snprintf(why, why_len, "%s\"%s\" is longer than %d bytes", where, key, NAME_MAX_LEN);
    return false;
  }
  strcpy(out, v->string);
  return true;
}

static bool only_keys(const json_value *obj, const char *const *allowed, const char *where, char *why, size_t why_len) {
  for (size_t i = 0; i < obj->len; i++) {
    bool ok = false;
    for (const char *const *a = allowed; *a; a++) ok = ok || strcmp(obj->members[i].key, *a) == 0;
    if (!ok) {
      snprintf(why, why_len, "%sunknown field \"%s\"", where, obj->members[i].key);
      return false;
    }
  }
  return true;
}

// A JSON number that is a whole number in [min, max] (exactly representable: <= 2^53).
static bool whole(const json_value *v, double min, double max) {
  return v->kind == JSON_NUMBER && v->number == floor(v->number) && v->number >= min && v->number <= max;
}

// Parses and checks the configuration into `state`. On failure leaves a reason in `why`.
static bool parse_config(const char *text, size_t len, char *why, size_t why_len) {
  char syntax[200];
  json_value *doc = json_parse(text, len, syntax, sizeof syntax);
  if (!doc) {
    snprintf(why, why_len, "configuration is not valid JSON: %s", syntax);
    return false;
  }
  bool ok = false;
  static const char *const top_keys[] = {"site", "volumes", "seed", NULL};
  static const char *const volume_keys[] = {"name", "size_bytes", NULL};
  if (doc->kind != JSON_OBJECT) {
    snprintf(why, why_len, "configuration must be a JSON object, not %s", json_kind_name(doc->kind));
    goto out;
  }
  if (!only_keys(doc, top_keys, "", why, why_len)) goto out;
  if (!get_name(doc, "site", "", state.site, why, why_len)) goto out;

  const json_value *vols = json_get(doc, "volumes");
  if (!vols || vols->kind != JSON_ARRAY || vols->len == 0 || vols->len > MAX_VOLUMES) {
    snprintf(why, why_len, "\"volumes\" must be a list of 1 to %d volumes", MAX_VOLUMES);
    goto out;
  }
  state.n_volumes = vols->len;
  for (size_t i = 0; i < vols->len; i++) {
    const json_value *v = vols->items[i];
    char where[32];
    snprintf(where, sizeof where, "volumes[%zu]: ", i);
    if (v->kind != JSON_OBJECT) {
      snprintf(why, why_len, "%smust be an object, not %s", where, json_kind_name(v->kind));
      goto out;
    }
    if (!only_keys(v, volume_keys, where, why, why_len)) goto out;
    volume *vol = &state.volumes[i];
    if (!get_name(v, "name", where, vol->name, why, why_len)) goto out;
    for (size_t j = 0; j < i; j++) {
      if (strcmp(state.volumes[j].name, vol->name) == 0) {
        snprintf(why, why_len, "%sname \"%s\" is listed twice", where, vol->name);
        goto out;
      }
    }
    const json_value *size = json_get(v, "size_bytes");
    if (!size || !whole(size, 1, 9007199254740992.0)) {
      snprintf(why, why_len, "%s\"size_bytes\" must be a whole number of bytes, at least 1", where);
      goto out;
    }
    vol->size_bytes = (uint64_t)size->number;
  }

  const json_value *seed = json_get(doc, "seed");
  if (seed && !whole(seed, 0, 4294967295.0)) {
    snprintf(why, why_len, "\"seed\" must be a whole number between 0 and 4294967295");
    goto out;
  }
  state.rng = seed ? (uint64_t)seed->number : 42;
  ok = true;
out:
  json_free(doc);
  return ok;
}

// ---- the simulation ----

// splitmix64: a tiny seedable generator, so a configuration always gives the same numbers.
static uint64_t next_random(void) {
  uint64_t z = (state.rng += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static void simulate(void) {
  for (size_t i = 0; i < state.n_volumes; i++) {
    volume *v = &state.volumes[i];
    uint64_t writes = 1 + next_random() % 40;
    for (uint64_t w = 0; w < writes; w++) {
      // Between 1 byte and 1 MiB, most of them small.
      uint64_t bytes = 1 + next_random() % (1ull << (9 + next_random() % 12));
      v->writes++;
      v->write_count++;
      v->write_sum += (double)bytes;
      for (size_t b = 0; b < N_BUCKETS; b++)
        if ((double)bytes <= WRITE_BUCKETS[b]) v->bucket_counts[b]++;
      v->used_bytes += bytes;
      // Someone cleans up when the volume is 90% full.
      if (v->used_bytes > v->size_bytes / 10 * 9) v->used_bytes = v->size_bytes / 10 * 3;
    }
  }
}

// ---- the exported functions ----

bool exports_pharos_plugin_exporter_api_configure(exporter_string_t *config, exports_pharos_plugin_exporter_api_plugin_error_t *err) {
  memset(&state, 0, sizeof state);
  char why[400];
  bool ok = parse_config((const char *)config->ptr, config->len, why, sizeof why);
  exporter_string_free(config); // the argument is ours to free
  if (!ok) {
    memset(&state, 0, sizeof state);
    set_error(err, PHAROS_PLUGIN_TYPES_PLUGIN_ERROR_INVALID_CONFIG, "%s", why);
    return false;
  }
  for (size_t i = 0; i < state.n_volumes; i++) // start a quarter full
    state.volumes[i].used_bytes = state.volumes[i].size_bytes / 4;
  state.configured = true;
  log_line(PHAROS_PLUGIN_LOG_LEVEL_INFO, "c-example: site %s, %zu volume(s)", state.site, state.n_volumes);
  return true;
}

bool exports_pharos_plugin_exporter_api_collect(exports_pharos_plugin_exporter_api_list_metric_family_t *ret, exports_pharos_plugin_exporter_api_plugin_error_t *err) {
  if (!state.configured) {
    // The host always calls configure first; this only guards against a broken host.
    set_error(err, PHAROS_PLUGIN_TYPES_PLUGIN_ERROR_PERMANENT, "collect called before configure");
    return false;
  }
  simulate();
  state.collects++;

  // The WASI wall clock (through wasi-libc and the preview1 adapter).
  struct timespec now;
  if (clock_gettime(CLOCK_REALTIME, &now) != 0) {
    set_error(err, PHAROS_PLUGIN_TYPES_PLUGIN_ERROR_TRANSIENT, "the wall clock is not available");
    return false;
  }

  enum { SIZE, USED, WRITES, WRITE_SIZE, COLLECTS, LAST_COLLECT, N_FAMILIES };
  pharos_plugin_types_metric_family_t *fams = xcalloc(N_FAMILIES, sizeof *fams);
  size_t n = state.n_volumes;

  fams[SIZE] = family("c_example_volume_size_bytes", "Capacity of the volume.", "bytes");
  fams[SIZE].points.tag = PHAROS_PLUGIN_TYPES_METRIC_POINTS_GAUGE;
  fams[SIZE].points.val.gauge = (pharos_plugin_types_list_scalar_point_t){xcalloc(n, sizeof(pharos_plugin_types_scalar_point_t)), n};

  fams[USED] = family("c_example_volume_used_bytes", "Space in use on the volume.", "bytes");
  fams[USED].points.tag = PHAROS_PLUGIN_TYPES_METRIC_POINTS_GAUGE;
  fams[USED].points.val.gauge = (pharos_plugin_types_list_scalar_point_t){xcalloc(n, sizeof(pharos_plugin_types_scalar_point_t)), n};

  fams[WRITES] = family("c_example_volume_writes_total", "Writes to the volume.", NULL);
  fams[WRITES].points.tag = PHAROS_PLUGIN_TYPES_METRIC_POINTS_COUNTER;
  fams[WRITES].points.val.counter = (pharos_plugin_types_list_scalar_point_t){xcalloc(n, sizeof(pharos_plugin_types_scalar_point_t)), n};

  fams[WRITE_SIZE] = family("c_example_write_size_bytes", "Size of each write.", "bytes");
  fams[WRITE_SIZE].points.tag = PHAROS_PLUGIN_TYPES_METRIC_POINTS_HISTOGRAM;
  fams[WRITE_SIZE].points.val.histogram = (pharos_plugin_types_list_histogram_point_t){xcalloc(n, sizeof(pharos_plugin_types_histogram_point_t)), n};

  for (size_t i = 0; i < n; i++) {
    const volume *v = &state.volumes[i];
    fams[SIZE].points.val.gauge.ptr[i] = (pharos_plugin_types_scalar_point_t){
        labels(2, "site", state.site, "volume", v->name), (double)v->size_bytes, AT_SCRAPE_TIME};
    fams[USED].points.val.gauge.ptr[i] = (pharos_plugin_types_scalar_point_t){
        labels(2, "site", state.site, "volume", v->name), (double)v->used_bytes, AT_SCRAPE_TIME};
    fams[WRITES].points.val.counter.ptr[i] = (pharos_plugin_types_scalar_point_t){
        labels(2, "site", state.site, "volume", v->name), (double)v->writes, AT_SCRAPE_TIME};

    pharos_plugin_types_histogram_point_t *h = &fams[WRITE_SIZE].points.val.histogram.ptr[i];
    h->labels = labels(2, "site", state.site, "volume", v->name);
    h->buckets = (pharos_plugin_types_list_bucket_t){xcalloc(N_BUCKETS, sizeof *h->buckets.ptr), N_BUCKETS};
    for (size_t b = 0; b < N_BUCKETS; b++)
      h->buckets.ptr[b] = (pharos_plugin_types_bucket_t){WRITE_BUCKETS[b], v->bucket_counts[b]};
    h->sum = v->write_sum;
    h->count = v->write_count; // the implied +Inf bucket
    h->timestamp = AT_SCRAPE_TIME;
  }

  fams[COLLECTS] = family("c_example_collects_total", "Calls to collect since this plugin instance was configured.", NULL);
  fams[COLLECTS].points.tag = PHAROS_PLUGIN_TYPES_METRIC_POINTS_COUNTER;
  fams[COLLECTS].points.val.counter = (pharos_plugin_types_list_scalar_point_t){xcalloc(1, sizeof(pharos_plugin_types_scalar_point_t)), 1};
  fams[COLLECTS].points.val.counter.ptr[0] = (pharos_plugin_types_scalar_point_t){
      labels(1, "site", state.site), (double)state.collects, AT_SCRAPE_TIME};

  fams[LAST_COLLECT] = family("c_example_last_collect_timestamp_seconds", "When collect last ran, by the plugin's clock.", "seconds");
  fams[LAST_COLLECT].points.tag = PHAROS_PLUGIN_TYPES_METRIC_POINTS_GAUGE;
  fams[LAST_COLLECT].points.val.gauge = (pharos_plugin_types_list_scalar_point_t){xcalloc(1, sizeof(pharos_plugin_types_scalar_point_t)), 1};
  fams[LAST_COLLECT].points.val.gauge.ptr[0] = (pharos_plugin_types_scalar_point_t){
      labels(1, "site", state.site), (double)now.tv_sec + (double)now.tv_nsec / 1e9, AT_SCRAPE_TIME};

  ret->ptr = fams;
  ret->len = N_FAMILIES;
  return true;
}
