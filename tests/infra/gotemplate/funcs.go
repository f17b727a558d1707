package main

// Our implementations of the consul-template functions Firedrill's Nomad jobs use (and a few
// plain helpers), written against consul-template v0.42.1's documented and observed semantics:
//
//   - service "[tag.]name[@dc][|filter,...]": the healthy instances (passing only, unless a filter
//     such as "any" or "passing,warning" says otherwise), sorted by node then ID; an unknown
//     service is an empty list, never an error.
//   - services: every catalog service with its tags, by name.
//   - key: blocks until the key exists; keyOrDefault: the default when absent or empty;
//     keyExists: whether it is present.
//   - secret "path" ["k=v" ...]: a Vault read (no k=v) or write; the template waits until Vault
//     answers, so a secret absent from the world is a dependency that never arrives.
//   - env / mustEnv / envOrDefault: the process environment, which the caller sets to the task's
//     environment (Nomad masks the client's own variables out).
//   - toJSON: encoding/json with HTML escaping, surrounding space trimmed.
//
// plugin and writeToFile answer "function is disabled", as Nomad's default client
// function_denylist makes them. Every other consul-template name parses but fails when called,
// naming this file, so nothing silently renders differently from a Nomad client.

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/template"
)

// deniedFunctions is Nomad's default client template function_denylist.
var deniedFunctions = []string{"plugin", "writeToFile"}

// renderer holds the world and the dependencies a render waited for in vain.
type renderer struct {
	world   *World
	tmpl    *template.Template
	waiting []string
}

func (r *renderer) wait(dependency string) {
	for _, known := range r.waiting {
		if known == dependency {
			return
		}
	}
	r.waiting = append(r.waiting, dependency)
}

func notImplemented(name string) func(...any) (any, error) {
	return func(...any) (any, error) {
		return nil, fmt.Errorf("%s is a consul-template function that tests/infra/gotemplate does not implement yet: add it to funcs.go", name)
	}
}

func denied(...string) (string, error) {
	return "", errors.New("function is disabled")
}

// funcMap is consul-template's function namespace: every name defined, ours implemented.
func (r *renderer) funcMap() template.FuncMap {
	funcs := template.FuncMap{}
	for _, name := range consulTemplateFunctions {
		funcs[name] = notImplemented(name)
	}
	for _, name := range sprigFunctions {
		funcs[name] = notImplemented(name)
	}
	implemented := template.FuncMap{
		"service":      r.service,
		"services":     r.services,
		"key":          r.key,
		"keyExists":    r.keyExists,
		"keyOrDefault": r.keyOrDefault,
		"secret":       r.secret,
		"env":          os.Getenv,
		"mustEnv":      mustEnv,
		"envOrDefault": envOrDefault,

		"executeTemplate": r.executeTemplate,

		"toJSON":                toJSON,
		"toJSONPretty":          toJSONPretty,
		"toUnescapedJSON":       toUnescapedJSON,
		"toUnescapedJSONPretty": toUnescapedJSONPretty,
		"parseJSON":             parseJSON,
		"parseBool":             parseBool,
		"parseInt":              parseInt,
		"parseFloat":            parseFloat,
		"parseUint":             parseUint,
		"toLower":               strings.ToLower,
		"toUpper":               strings.ToUpper,
		"trimSpace":             strings.TrimSpace,
		"trim":                  func(cutset, s string) string { return strings.Trim(s, cutset) },
		"trimPrefix":            func(prefix, s string) string { return strings.TrimPrefix(s, prefix) },
		"trimSuffix":            func(suffix, s string) string { return strings.TrimSuffix(s, suffix) },
		"replaceAll":            func(from, to, s string) string { return strings.ReplaceAll(s, from, to) },
		"join":                  func(sep string, items []string) string { return strings.Join(items, sep) },
		"split":                 split,
		"regexMatch":            regexMatch,
		"regexReplaceAll":       regexReplaceAll,
		"contains":              func(item, list any) bool { return in(list, item) },
		"in":                    func(list, item any) bool { return in(list, item) },
		"indent":                indent,
		"base64Encode":          func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) },
		"base64Decode":          func(s string) (string, error) { return decode64(base64.StdEncoding, "base64Decode", s) },
		"base64URLEncode":       func(s string) string { return base64.URLEncoding.EncodeToString([]byte(s)) },
		"base64URLDecode":       func(s string) (string, error) { return decode64(base64.URLEncoding, "base64URLDecode", s) },
		"sha256Hex":             func(s string) string { sum := sha256.Sum256([]byte(s)); return hex.EncodeToString(sum[:]) },
		"md5sum":                func(s string) string { return fmt.Sprintf("%x", md5.Sum([]byte(s))) },
	}
	for name, fn := range implemented {
		funcs[name] = fn
	}
	for _, name := range deniedFunctions {
		funcs[name] = denied
	}
	return funcs
}

// --- Consul ------------------------------------------------------------------------------------

func (r *renderer) service(args ...string) ([]*HealthService, error) {
	if len(args) == 0 || args[0] == "" {
		return []*HealthService{}, nil
	}
	query, err := parseServiceQuery(strings.Join(args, "|"))
	if err != nil {
		return nil, err
	}
	return r.world.healthy(query), nil
}

func (r *renderer) services(args ...string) ([]*CatalogSnippet, error) {
	raw := strings.Join(args, "")
	if !catalogQuery.MatchString(raw) {
		return nil, fmt.Errorf("catalog.services: invalid format: %q", raw)
	}
	if err := checkQueryKeys("catalog.services", groups(catalogQuery, raw)["query"]); err != nil {
		return nil, err
	}
	return r.world.catalog(), nil
}

func (r *renderer) key(path string) (string, error) {
	if path == "" {
		return "", nil
	}
	value, ok := r.world.KV[path]
	if !ok {
		r.wait(fmt.Sprintf("kv.get(%s)", path))
	}
	return value, nil
}

func (r *renderer) keyExists(path string) (bool, error) {
	if path == "" {
		return false, nil
	}
	_, ok := r.world.KV[path]
	return ok, nil
}

func (r *renderer) keyOrDefault(path, fallback string) (string, error) {
	if value := r.world.KV[path]; path != "" && value != "" {
		return value, nil
	}
	return fallback, nil
}

// --- Vault -------------------------------------------------------------------------------------

func (r *renderer) secret(args ...string) (any, error) {
	if len(args) == 0 {
		return nil, nil
	}
	path, rest := args[0], args[1:]
	var pairs []string
	for _, arg := range rest {
		if arg == "" {
			continue
		}
		k, v, ok := strings.Cut(arg, "=")
		if !ok {
			return nil, fmt.Errorf("not k=v pair %q", arg)
		}
		pairs = append(pairs, strings.TrimSpace(k)+"="+strings.TrimSpace(v))
	}
	data, ok := r.world.Secrets[path]
	if !ok {
		if len(rest) == 0 {
			r.wait(fmt.Sprintf("vault.read(%s)", path))
		} else {
			sort.Strings(pairs)
			r.wait(fmt.Sprintf("vault.write(%s -> %s)", path, strings.Join(pairs, ",")))
		}
		// consul-template hands back an untyped nil until Vault answers.
		return nil, nil
	}
	copied := make(map[string]any, len(data))
	for k, v := range data {
		copied[k] = v
	}
	return &Secret{Data: copied}, nil
}

// --- environment and templates -----------------------------------------------------------------

func mustEnv(name string) (string, error) {
	if value := os.Getenv(name); value != "" {
		return value, nil
	}
	return "", fmt.Errorf("required environment variable %s is empty", name)
}

func envOrDefault(name, fallback string) string {
	if value, ok := os.LookupEnv(name); ok {
		return value
	}
	return fallback
}

func (r *renderer) executeTemplate(name string, data ...any) (string, error) {
	var dot any
	switch len(data) {
	case 0:
	case 1:
		dot = data[0]
	default:
		return "", fmt.Errorf("executeTemplate: wrong number of arguments, expected 1 or 2, but got %d", len(data)+1)
	}
	var out bytes.Buffer
	if err := r.tmpl.ExecuteTemplate(&out, name, dot); err != nil {
		return "", err
	}
	return out.String(), nil
}

// --- helpers -----------------------------------------------------------------------------------

func toJSON(v any) (string, error) {
	encoded, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("toJSON: %w", err)
	}
	return string(bytes.TrimSpace(encoded)), nil
}

func toJSONPretty(v any) (string, error) {
	encoded, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return "", fmt.Errorf("toJSONPretty: %w", err)
	}
	return string(bytes.TrimSpace(encoded)), nil
}

func unescapedJSON(v any, indent string, label string) (string, error) {
	var out bytes.Buffer
	encoder := json.NewEncoder(&out)
	encoder.SetEscapeHTML(false)
	encoder.SetIndent("", indent)
	if err := encoder.Encode(v); err != nil {
		return "", fmt.Errorf("%s: %w", label, err)
	}
	return strings.TrimRight(out.String(), "\r\n"), nil
}

func toUnescapedJSON(v any) (string, error) { return unescapedJSON(v, "", "toUnescapedJSON") }

func toUnescapedJSONPretty(v any) (string, error) {
	return unescapedJSON(v, "  ", "toUnescapedJSONPretty")
}

func parseJSON(s string) (any, error) {
	if s == "" {
		return map[string]any{}, nil
	}
	var data any
	if err := json.Unmarshal([]byte(s), &data); err != nil {
		return nil, err
	}
	return data, nil
}

func parseBool(s string) (bool, error) {
	if s == "" {
		return false, nil
	}
	v, err := strconv.ParseBool(s)
	if err != nil {
		return false, fmt.Errorf("parseBool: %w", err)
	}
	return v, nil
}

func parseInt(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parseInt: %w", err)
	}
	return v, nil
}

func parseUint(s string) (uint64, error) {
	if s == "" {
		return 0, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parseUint: %w", err)
	}
	return v, nil
}

func parseFloat(s string) (float64, error) {
	if s == "" {
		return 0, nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("parseFloat: %w", err)
	}
	return v, nil
}

func split(sep, s string) []string {
	s = strings.TrimSpace(s)
	if s == "" {
		return []string{}
	}
	return strings.Split(s, sep)
}

func regexMatch(expr, s string) (bool, error) {
	re, err := regexp.Compile(expr)
	if err != nil {
		return false, err
	}
	return re.MatchString(s), nil
}

func regexReplaceAll(expr, replacement, s string) (string, error) {
	re, err := regexp.Compile(expr)
	if err != nil {
		return "", err
	}
	return re.ReplaceAllString(s, replacement), nil
}

// in: whether a list holds an item (same kind of number, or same string), or a string holds a
// substring.
func in(list, item any) bool {
	lv, iv := reflect.ValueOf(list), reflect.ValueOf(item)
	if !lv.IsValid() || !iv.IsValid() {
		return false
	}
	switch lv.Kind() {
	case reflect.String:
		return iv.Type() == lv.Type() && strings.Contains(lv.String(), iv.String())
	case reflect.Slice, reflect.Array:
		for i := 0; i < lv.Len(); i++ {
			element := lv.Index(i)
			if element.Kind() == reflect.Interface {
				element = element.Elem()
			}
			if sameValue(element, iv) {
				return true
			}
		}
	}
	return false
}

func sameValue(a, b reflect.Value) bool {
	if !a.IsValid() {
		return false
	}
	switch a.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		switch b.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			return a.Int() == b.Int()
		}
	case reflect.Float32, reflect.Float64:
		switch b.Kind() {
		case reflect.Float32, reflect.Float64:
			return a.Float() == b.Float()
		}
	case reflect.String:
		return a.Type() == b.Type() && a.String() == b.String()
	}
	return false
}

// indent puts spaces before every non-empty line.
func indent(spaces int, s string) (string, error) {
	if spaces < 0 {
		return "", errors.New("indent value must be a positive integer")
	}
	prefix := strings.Repeat(" ", spaces)
	var out strings.Builder
	lineStart := true
	for i := 0; i < len(s); i++ {
		if lineStart && s[i] != '\n' {
			out.WriteString(prefix)
		}
		out.WriteByte(s[i])
		lineStart = s[i] == '\n'
	}
	return out.String(), nil
}

func decode64(encoding *base64.Encoding, label, s string) (string, error) {
	decoded, err := encoding.DecodeString(s)
	if err != nil {
		return "", fmt.Errorf("%s: %w", label, err)
	}
	return string(decoded), nil
}
