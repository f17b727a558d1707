// Command gotemplate renders one Nomad `template` block the way a Nomad client's consul-template
// runner does — Go's text/template with the block's delimiters, missingkey=zero, and
// consul-template's function namespace — against a JSON "world" standing in for Consul and Vault.
// Standard library only; the tests build it once per session (tests/infra/test_consul_templates.py).
//
//	gotemplate render  [-world FILE] [-left DELIM] [-right DELIM] TEMPLATE|-
//	gotemplate inspect [-left DELIM] [-right DELIM] TEMPLATE|-
//
// render writes the output to stdout. Exit status: 0 rendered; 1 the template fails to parse or
// execute (the message is consul-template's, "parse: ..." or "execute: ..."); 3 it depends on a
// key or secret the world lacks, which consul-template would wait for forever (the task never
// starts); 2 bad usage or world file.
//
// inspect parses the template and prints, as JSON, the functions it calls and the literal
// arguments of its Consul, Vault and environment lookups, so a test can tell which templates
// read Consul and which services, variables and secrets they need.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/template"
	"text/template/parse"
)

const (
	exitTemplate = 1
	exitUsage    = 2
	exitWaiting  = 3
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "render" && args[0] != "inspect") {
		fmt.Fprintln(stderr, "usage: gotemplate render|inspect [-world FILE] [-left DELIM] [-right DELIM] TEMPLATE|-")
		return exitUsage
	}
	command := args[0]
	flags := flag.NewFlagSet(command, flag.ContinueOnError)
	flags.SetOutput(stderr)
	worldPath := flags.String("world", "", "JSON world file (services, kv, secrets)")
	left := flags.String("left", "", "left delimiter (default {{)")
	right := flags.String("right", "", "right delimiter (default }})")
	if err := flags.Parse(args[1:]); err != nil {
		return exitUsage
	}
	if flags.NArg() != 1 {
		fmt.Fprintln(stderr, "gotemplate: exactly one template file (or - for stdin)")
		return exitUsage
	}
	contents, err := readTemplate(flags.Arg(0))
	if err != nil {
		fmt.Fprintf(stderr, "gotemplate: %v\n", err)
		return exitUsage
	}
	world, err := loadWorld(*worldPath)
	if err != nil {
		fmt.Fprintf(stderr, "gotemplate: %v\n", err)
		return exitUsage
	}

	r := &renderer{world: world}
	// As consul-template's Template.Execute: unnamed template, the block's delimiters, the
	// function map, missing map keys render as zero values.
	tmpl := template.New("").Delims(*left, *right).Funcs(r.funcMap()).Option("missingkey=zero")
	r.tmpl = tmpl
	if _, err := tmpl.Parse(contents); err != nil {
		fmt.Fprintf(stderr, "parse: %v\n", err)
		return exitTemplate
	}

	if command == "inspect" {
		encoded, _ := json.MarshalIndent(inspect(tmpl), "", "  ")
		fmt.Fprintln(stdout, string(encoded))
		return 0
	}

	var out bytes.Buffer
	if err := tmpl.Execute(&out, nil); err != nil {
		fmt.Fprintf(stderr, "execute: %v\n", err)
		return exitTemplate
	}
	if len(r.waiting) > 0 {
		// Nomad reports these as "Missing: ..." and keeps the task from starting.
		fmt.Fprintf(stderr, "missing: %s\n", strings.Join(r.waiting, ", "))
		return exitWaiting
	}
	if _, err := stdout.Write(out.Bytes()); err != nil {
		fmt.Fprintf(stderr, "gotemplate: %v\n", err)
		return exitUsage
	}
	return 0
}

func readTemplate(path string) (string, error) {
	var raw []byte
	var err error
	if path == "-" {
		raw, err = io.ReadAll(os.Stdin)
	} else {
		raw, err = os.ReadFile(path)
	}
	return string(raw), err
}

// Report is what inspect prints.
type Report struct {
	// Functions: every function the template calls, builtins included, sorted.
	Functions []string `json:"functions"`
	// Lookups: function name -> the distinct literal first arguments it is called with
	// (service queries, env names, secret paths, keys).
	Lookups map[string][]string `json:"lookups"`
	// Dynamic: lookups whose argument is computed, so no test can know it in advance.
	Dynamic []string `json:"dynamic"`
}

// lookupFunctions are the calls whose first argument inspect reports.
var lookupFunctions = map[string]bool{
	"service": true, "connect": true, "key": true, "keyOrDefault": true, "keyExists": true,
	"ls": true, "safeLs": true, "tree": true, "safeTree": true, "secret": true, "secrets": true,
	"env": true, "mustEnv": true, "envOrDefault": true, "node": true, "nodes": true,
	"nomadService": true, "nomadVar": true,
}

type inspector struct {
	functions map[string]bool
	lookups   map[string]map[string]bool
	dynamic   map[string]bool
}

func inspect(tmpl *template.Template) *Report {
	in := &inspector{functions: map[string]bool{}, lookups: map[string]map[string]bool{}, dynamic: map[string]bool{}}
	for _, t := range tmpl.Templates() {
		if t.Tree != nil && t.Tree.Root != nil {
			in.walk(t.Tree.Root)
		}
	}
	report := &Report{Functions: sortedKeys(in.functions), Lookups: map[string][]string{}, Dynamic: sortedKeys(in.dynamic)}
	for name, args := range in.lookups {
		report.Lookups[name] = sortedKeys(args)
	}
	return report
}

func sortedKeys(set map[string]bool) []string {
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (in *inspector) walk(node parse.Node) {
	switch n := node.(type) {
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, child := range n.Nodes {
			in.walk(child)
		}
	case *parse.ActionNode:
		in.walk(n.Pipe)
	case *parse.IfNode:
		in.branch(&n.BranchNode)
	case *parse.RangeNode:
		in.branch(&n.BranchNode)
	case *parse.WithNode:
		in.branch(&n.BranchNode)
	case *parse.TemplateNode:
		if n.Pipe != nil {
			in.walk(n.Pipe)
		}
	case *parse.PipeNode:
		if n == nil {
			return
		}
		var previous *parse.CommandNode
		for _, cmd := range n.Cmds {
			in.command(cmd, previous)
			previous = cmd
		}
	case *parse.ChainNode:
		in.walk(n.Node)
	}
}

func (in *inspector) branch(b *parse.BranchNode) {
	in.walk(b.Pipe)
	in.walk(b.List)
	if b.ElseList != nil {
		in.walk(b.ElseList)
	}
}

// command records a call and the literal first argument of a lookup; in a pipeline the previous
// command's value is the last argument ("incidents" | service).
func (in *inspector) command(cmd *parse.CommandNode, previous *parse.CommandNode) {
	for _, arg := range cmd.Args {
		if _, ok := arg.(*parse.IdentifierNode); !ok {
			in.walk(arg)
		}
	}
	if len(cmd.Args) == 0 {
		return
	}
	ident, ok := cmd.Args[0].(*parse.IdentifierNode)
	if !ok {
		return
	}
	in.functions[ident.Ident] = true
	if !lookupFunctions[ident.Ident] {
		return
	}
	args := cmd.Args[1:]
	if previous != nil {
		if len(previous.Args) == 1 {
			args = append(append([]parse.Node{}, args...), previous.Args[0])
		} else {
			args = append(append([]parse.Node{}, args...), previous)
		}
	}
	if len(args) == 0 {
		return
	}
	literal, ok := args[0].(*parse.StringNode)
	if !ok {
		in.dynamic[fmt.Sprintf("%s %s", ident.Ident, args[0])] = true
		return
	}
	value := literal.Text
	// service "name" "any" is the query "name|any": report the whole query.
	if ident.Ident == "service" || ident.Ident == "connect" {
		parts := []string{value}
		for _, more := range args[1:] {
			if s, ok := more.(*parse.StringNode); ok {
				parts = append(parts, s.Text)
			}
		}
		value = strings.Join(parts, "|")
	}
	if in.lookups[ident.Ident] == nil {
		in.lookups[ident.Ident] = map[string]bool{}
	}
	in.lookups[ident.Ident][value] = true
}
