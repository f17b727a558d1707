package main

// The "world": what Consul and Vault would answer, read from a JSON file instead of live servers.
//
// The shapes follow consul-template v0.42.1 (dependency/health_service.go, catalog_services.go,
// vault_common.go): a template sees the same field names and types it sees on a Nomad client.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
)

// World is the JSON document given with -world.
//
//	{
//	  "services": {"incidents": [{"Node": "n1", "Address": "192.0.2.10", "Port": 21000, ...}]},
//	  "kv":       {"config/flag": "on"},
//	  "secrets":  {"pki_int/issue/alertmanager": {"certificate": "...", "private_key": "..."}}
//	}
//
// A service missing from "services" is a service Consul does not know: its health query answers
// an empty list. A key missing from "kv" or a secret missing from "secrets" is a dependency
// consul-template would keep waiting for (the template never renders).
type World struct {
	Services map[string][]*HealthService `json:"services"`
	KV       map[string]string           `json:"kv"`
	Secrets  map[string]map[string]any   `json:"secrets"`
}

// HealthService is one entry of consul-template's `service` result.
type HealthService struct {
	Node                   string
	NodeID                 string
	NodeAddress            string
	NodeTaggedAddresses    map[string]string
	NodeMeta               map[string]string
	ServiceMeta            map[string]string
	Address                string
	ServiceTaggedAddresses map[string]ServiceAddress
	ID                     string
	Name                   string
	Tags                   ServiceTags
	Checks                 []*HealthCheck
	Status                 string
	Port                   int
	Weights                AgentWeights
}

// ServiceTags is the sorted tag list of a service entry.
type ServiceTags []string

// ServiceAddress is a tagged address of a service (Consul's api.ServiceAddress).
type ServiceAddress struct {
	Address string
	Port    int
}

// AgentWeights is Consul's api.AgentWeights.
type AgentWeights struct {
	Passing int
	Warning int
}

// HealthCheck carries the fields of Consul's api.HealthCheck that a template may read.
type HealthCheck struct {
	Node        string
	CheckID     string
	Name        string
	Status      string
	Notes       string
	Output      string
	ServiceID   string
	ServiceName string
	ServiceTags []string
	Type        string
}

// CatalogSnippet is one entry of consul-template's `services` result.
type CatalogSnippet struct {
	Name string
	Tags ServiceTags
}

// Secret is what `secret` returns (consul-template's dependency.Secret).
type Secret struct {
	RequestID     string
	LeaseID       string
	LeaseDuration int
	Renewable     bool
	Data          map[string]any
	Warnings      []string
	Auth          *SecretAuth
	WrapInfo      *SecretWrapInfo
}

// SecretAuth is the auth part of a Vault response.
type SecretAuth struct {
	ClientToken   string
	Accessor      string
	Policies      []string
	Metadata      map[string]string
	LeaseDuration int
	Renewable     bool
}

// SecretWrapInfo is the response-wrapping part of a Vault response.
type SecretWrapInfo struct {
	Token           string
	TTL             int
	WrappedAccessor string
}

// loadWorld reads a world file. Numbers inside secrets stay json.Number, as the Vault client
// decodes them.
func loadWorld(path string) (*World, error) {
	world := &World{}
	if path == "" {
		return world, nil
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	decoder := json.NewDecoder(bytes.NewReader(raw))
	decoder.UseNumber()
	decoder.DisallowUnknownFields()
	if err := decoder.Decode(world); err != nil {
		return nil, fmt.Errorf("world %s: %w", path, err)
	}
	for name, entries := range world.Services {
		for i, entry := range entries {
			if entry == nil {
				return nil, fmt.Errorf("world %s: services.%s[%d] is null", path, name, i)
			}
		}
	}
	return world, nil
}

// The grammar of a health service query, "[tag.]name[?query][@dc][~near][|filter,...]", with the
// character classes consul-template accepts for each part.
var healthQuery = regexp.MustCompile(`\A` +
	`(?:(?P<tag>[[:word:]=:.\-]+)\.)?` +
	`(?P<name>[[:word:]\-]+)` +
	`(?:\?(?P<query>[[:word:]\-=&]+))?` +
	`(?:@(?P<dc>[[:word:].\-]+))?` +
	`(?:~(?P<near>[[:word:].\-]+))?` +
	`(?:\|(?P<filter>[[:word:],]+))?` +
	`\z`)

var catalogQuery = regexp.MustCompile(`\A(?:\?(?P<query>[[:word:]\-=&]+))?(?:@(?P<dc>[[:word:].\-]+))?\z`)

var healthStates = map[string]bool{"any": true, "passing": true, "warning": true, "critical": true, "maintenance": true}

var queryKeys = map[string]bool{"ns": true, "peer": true, "partition": true, "sameness-group": true}

type serviceQuery struct {
	name    string
	tag     string
	filters []string
}

func groups(re *regexp.Regexp, s string) map[string]string {
	found := map[string]string{}
	match := re.FindStringSubmatch(s)
	for i, name := range re.SubexpNames() {
		if name != "" && match != nil {
			found[name] = match[i]
		}
	}
	return found
}

func checkQueryKeys(label, raw string) error {
	if raw == "" {
		return nil
	}
	for _, part := range strings.Split(raw, "&") {
		key, _, _ := strings.Cut(part, "=")
		if !queryKeys[key] {
			return fmt.Errorf("%s: invalid query parameter key %q in query %q", label, key, raw)
		}
	}
	return nil
}

func parseServiceQuery(s string) (*serviceQuery, error) {
	if !healthQuery.MatchString(s) {
		return nil, fmt.Errorf("health.service: invalid format: %q", s)
	}
	parts := groups(healthQuery, s)
	if err := checkQueryKeys("health.service", parts["query"]); err != nil {
		return nil, err
	}
	query := &serviceQuery{name: parts["name"], tag: parts["tag"]}
	for _, filter := range strings.Split(parts["filter"], ",") {
		filter = strings.TrimSpace(filter)
		if filter == "" {
			continue
		}
		if !healthStates[filter] {
			return nil, fmt.Errorf("health.service: invalid filter: %q in %q", filter, s)
		}
		query.filters = append(query.filters, filter)
	}
	if len(query.filters) == 0 {
		query.filters = []string{"passing"}
	}
	return query, nil
}

func (q *serviceQuery) accepts(status string) bool {
	for _, filter := range q.filters {
		if filter == "any" || filter == status {
			return true
		}
	}
	return false
}

func hasTag(tags []string, tag string) bool {
	for _, t := range tags {
		if t == tag {
			return true
		}
	}
	return false
}

// healthy answers a health service query: the entries whose status passes the filters (passing
// only by default), with the node's address when the service has none, tags sorted, ordered by
// node then service ID.
func (w *World) healthy(q *serviceQuery) []*HealthService {
	result := []*HealthService{}
	for _, entry := range w.Services[q.name] {
		status := entry.Status
		if status == "" {
			status = "passing"
		}
		if !q.accepts(status) || (q.tag != "" && !hasTag(entry.Tags, q.tag)) {
			continue
		}
		copied := *entry
		copied.Status = status
		if copied.Name == "" {
			copied.Name = q.name
		}
		if copied.Address == "" {
			copied.Address = copied.NodeAddress
		}
		copied.Tags = append(ServiceTags{}, entry.Tags...)
		sort.Strings(copied.Tags)
		result = append(result, &copied)
	}
	sort.SliceStable(result, func(i, j int) bool {
		if result[i].Node != result[j].Node {
			return result[i].Node < result[j].Node
		}
		return result[i].ID < result[j].ID
	})
	return result
}

// catalog answers a catalog services query: every registered service, healthy or not, with the
// union of its instances' tags, by name.
func (w *World) catalog() []*CatalogSnippet {
	result := []*CatalogSnippet{}
	for name, entries := range w.Services {
		if len(entries) == 0 {
			continue
		}
		seen := map[string]bool{}
		tags := ServiceTags{}
		for _, entry := range entries {
			for _, tag := range entry.Tags {
				if !seen[tag] {
					seen[tag] = true
					tags = append(tags, tag)
				}
			}
		}
		sort.Strings(tags)
		result = append(result, &CatalogSnippet{Name: name, Tags: tags})
	}
	sort.Slice(result, func(i, j int) bool { return result[i].Name < result[j].Name })
	return result
}
