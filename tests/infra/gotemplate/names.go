package main

// The names consul-template v0.42.1 defines in its template function map (template/template.go,
// funcMap), plus the hermetic Sprig v3.3.0 functions it adds with a "sprig_" prefix. A name that
// is not here and not a text/template builtin is a parse error, as on a Nomad client. Names here
// that this renderer does not implement fail when called, saying so (see funcs.go).

var consulTemplateFunctions = []string{
	// Consul, Vault and Nomad API functions.
	"datacenters", "exportedServices", "importedServices", "file", "key", "keyExists",
	"keyOrDefault", "ls", "safeLs", "node", "nodes", "partitions", "peerings", "secret", "secrets",
	"service", "connect", "services", "tree", "safeTree", "caRoots", "caLeaf", "pkiCert",
	"nomadServices", "nomadService", "nomadVarList", "nomadVarListSafe", "nomadVar",
	"nomadVarExists",
	// Scratch.
	"scratch",
	// Helpers.
	"base64Decode", "base64Encode", "base64URLDecode", "base64URLEncode", "byKey", "byPort",
	"byTag", "contains", "containsAll", "containsAny", "containsNone", "containsNotAll", "env",
	"mustEnv", "envOrDefault", "executeTemplate", "explode", "explodeMap", "mergeMap",
	"mergeMapWithOverride", "in", "indent", "loop", "join", "trim", "trimPrefix", "trimSuffix",
	"trimSpace", "parseBool", "parseFloat", "parseInt", "parseJSON", "parseUint", "parseYAML",
	"plugin", "regexReplaceAll", "regexMatch", "replaceAll", "sha256Hex", "md5sum",
	"hmacSHA256Hex", "timestamp", "toLower", "toJSON", "toJSONPretty", "toUnescapedJSON",
	"toUnescapedJSONPretty", "toTitle", "toTOML", "toUpper", "toYAML", "split", "splitToMap",
	"byMeta", "sockaddr", "writeToFile",
	// Math.
	"add", "subtract", "multiply", "divide", "modulo", "minimum", "maximum",
	// Debug.
	"spew_dump", "spew_printf", "spew_sdump", "spew_sprintf",
}

var sprigFunctions = []string{
	"sprig_abbrev", "sprig_abbrevboth", "sprig_add", "sprig_add1", "sprig_add1f", "sprig_addf",
	"sprig_adler32sum", "sprig_ago", "sprig_all", "sprig_any", "sprig_append", "sprig_atoi",
	"sprig_b32dec", "sprig_b32enc", "sprig_b64dec", "sprig_b64enc", "sprig_base", "sprig_bcrypt",
	"sprig_biggest", "sprig_buildCustomCert", "sprig_camelcase", "sprig_cat", "sprig_ceil",
	"sprig_chunk", "sprig_clean", "sprig_coalesce", "sprig_compact", "sprig_concat",
	"sprig_contains", "sprig_decryptAES", "sprig_deepCopy", "sprig_deepEqual", "sprig_default",
	"sprig_derivePassword", "sprig_dict", "sprig_dig", "sprig_dir", "sprig_div", "sprig_divf",
	"sprig_duration", "sprig_durationRound", "sprig_empty", "sprig_encryptAES", "sprig_ext",
	"sprig_fail", "sprig_first", "sprig_float64", "sprig_floor", "sprig_fromJson", "sprig_genCA",
	"sprig_genCAWithKey", "sprig_genPrivateKey", "sprig_genSelfSignedCert",
	"sprig_genSelfSignedCertWithKey", "sprig_genSignedCert", "sprig_genSignedCertWithKey",
	"sprig_get", "sprig_has", "sprig_hasKey", "sprig_hasPrefix", "sprig_hasSuffix", "sprig_hello",
	"sprig_htpasswd", "sprig_indent", "sprig_initial", "sprig_initials", "sprig_int",
	"sprig_int64", "sprig_isAbs", "sprig_join", "sprig_kebabcase", "sprig_keys", "sprig_kindIs",
	"sprig_kindOf", "sprig_last", "sprig_list", "sprig_lower", "sprig_max", "sprig_maxf",
	"sprig_merge", "sprig_mergeOverwrite", "sprig_min", "sprig_minf", "sprig_mod", "sprig_mul",
	"sprig_mulf", "sprig_mustAppend", "sprig_mustChunk", "sprig_mustCompact",
	"sprig_mustDateModify", "sprig_mustDeepCopy", "sprig_mustFirst", "sprig_mustFromJson",
	"sprig_mustHas", "sprig_mustInitial", "sprig_mustLast", "sprig_mustMerge",
	"sprig_mustMergeOverwrite", "sprig_mustPrepend", "sprig_mustRegexFind",
	"sprig_mustRegexFindAll", "sprig_mustRegexMatch", "sprig_mustRegexReplaceAll",
	"sprig_mustRegexReplaceAllLiteral", "sprig_mustRegexSplit", "sprig_mustRest",
	"sprig_mustReverse", "sprig_mustSlice", "sprig_mustToDate", "sprig_mustToJson",
	"sprig_mustToPrettyJson", "sprig_mustToRawJson", "sprig_mustUniq", "sprig_mustWithout",
	"sprig_must_date_modify", "sprig_nindent", "sprig_nospace", "sprig_omit", "sprig_osBase",
	"sprig_osClean", "sprig_osDir", "sprig_osExt", "sprig_osIsAbs", "sprig_pick", "sprig_pluck",
	"sprig_plural", "sprig_prepend", "sprig_quote", "sprig_randInt", "sprig_regexFind",
	"sprig_regexFindAll", "sprig_regexMatch", "sprig_regexQuoteMeta", "sprig_regexReplaceAll",
	"sprig_regexReplaceAllLiteral", "sprig_regexSplit", "sprig_repeat", "sprig_replace",
	"sprig_rest", "sprig_reverse", "sprig_round", "sprig_semver", "sprig_semverCompare",
	"sprig_seq", "sprig_set", "sprig_sha1sum", "sprig_sha256sum", "sprig_sha512sum",
	"sprig_shuffle", "sprig_slice", "sprig_snakecase", "sprig_sortAlpha", "sprig_split",
	"sprig_splitList", "sprig_splitn", "sprig_squote", "sprig_sub", "sprig_subf", "sprig_substr",
	"sprig_swapcase", "sprig_ternary", "sprig_title", "sprig_toDate", "sprig_toDecimal",
	"sprig_toJson", "sprig_toPrettyJson", "sprig_toRawJson", "sprig_toString", "sprig_toStrings",
	"sprig_trim", "sprig_trimAll", "sprig_trimPrefix", "sprig_trimSuffix", "sprig_trimall",
	"sprig_trunc", "sprig_tuple", "sprig_typeIs", "sprig_typeIsLike", "sprig_typeOf", "sprig_uniq",
	"sprig_unixEpoch", "sprig_unset", "sprig_until", "sprig_untilStep", "sprig_untitle",
	"sprig_upper", "sprig_urlJoin", "sprig_urlParse", "sprig_values", "sprig_without",
	"sprig_wrap", "sprig_wrapWith",
}
