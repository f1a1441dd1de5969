// buildkit-dockerfile reads Dockerfiles and shell words as JSON on stdin and prints what
// BuildKit's own frontend makes of them: the parse tree, the image config of the target
// stage (FROM scratch / stage bases only, so nothing is fetched), and lexer results.
// imgbuild's tests compare their parser, resolver and lexer with it.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/dockerfile2llb"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	"github.com/moby/buildkit/frontend/dockerui"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	mode "github.com/tonistiigi/dchapes-mode"
	fscopy "github.com/tonistiigi/fsutil/copy"
)

type input struct {
	Cases []struct {
		Dockerfile string            `json:"dockerfile"`
		BuildArgs  map[string]string `json:"buildArgs"`
		Target     string            `json:"target"`
		Convert    bool              `json:"convert"`
	} `json:"cases"`
	Words []struct {
		Word   string   `json:"word"`
		Env    []string `json:"env"`
		Escape string   `json:"escape"`
	} `json:"words"`
	// filepath.Match, as COPY/ADD wildcards use it.
	Matches []struct {
		Pattern string `json:"pattern"`
		Name    string `json:"name"`
	} `json:"matches"`
	// A .dockerignore text and paths, as the context transfer filters them.
	Ignores []struct {
		Text  string   `json:"text"`
		Paths []string `json:"paths"`
	} `json:"ignores"`
	// A symbolic --chmod applied to a source mode, as fsutil's copy does (umask 0).
	Chmods []struct {
		Mode  string `json:"mode"`
		Perm  uint32 `json:"perm"`
		IsDir bool   `json:"isDir"`
	} `json:"chmods"`
	// A COPY of Src (wildcards allowed) from the directory Root with --exclude patterns, done as
	// BuildKit's file op does it (wildcards resolved, then fsutil's copy of each match).
	Copies []struct {
		Root    string   `json:"root"`
		Src     string   `json:"src"`
		Exclude []string `json:"exclude"`
	} `json:"copies"`
}

type copyResult struct {
	// What lands below DEST, relative, directories with a trailing "/".
	Paths []string `json:"paths"`
	Error string   `json:"error,omitempty"`
}

// copyExcluding follows BuildKit's docopy (solver/llbsolver/file/backend.go) for a local
// COPY source: the options dockerfile2llb sets (FollowSymlinks, CopyDirContentsOnly,
// AllowWildcard) and the --exclude patterns.
func copyExcluding(root, src string, exclude []string) ([]string, error) {
	dest, err := os.MkdirTemp("", "witness-copy-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dest)
	matches, err := fscopy.ResolveWildcards(root, filepath.Join("/", src), true)
	if err != nil {
		return nil, err
	}
	for _, m := range matches {
		err := fscopy.Copy(context.Background(), root, m, dest, "/out/", func(ci *fscopy.CopyInfo) {
			ci.ExcludePatterns = exclude
			ci.CopyDirContents = true
			ci.FollowLinks = true
		})
		if err != nil {
			return nil, err
		}
	}
	paths := []string{}
	out := filepath.Join(dest, "out")
	err = filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == out {
			return err
		}
		rel, _ := filepath.Rel(out, p)
		if d.IsDir() {
			rel += "/"
		}
		paths = append(paths, filepath.ToSlash(rel))
		return nil
	})
	if os.IsNotExist(err) {
		err = nil
	}
	sort.Strings(paths)
	return paths, err
}

type matchResult struct {
	Match bool   `json:"match"`
	Error string `json:"error,omitempty"`
}

type ignoreResult struct {
	Patterns []string `json:"patterns"`
	Excluded []bool   `json:"excluded"`
	Error    string   `json:"error,omitempty"`
}

type chmodResult struct {
	Perm  uint32 `json:"perm"`
	Error string `json:"error,omitempty"`
}

type heredoc struct {
	Name           string `json:"name"`
	Content        string `json:"content"`
	Expand         bool   `json:"expand"`
	Chomp          bool   `json:"chomp"`
	FileDescriptor uint   `json:"fileDescriptor"`
}

type node struct {
	Keyword   string    `json:"keyword"`
	Flags     []string  `json:"flags"`
	Args      []string  `json:"args"`
	Child     *node     `json:"child,omitempty"`
	JSON      bool      `json:"json"`
	Heredocs  []heredoc `json:"heredocs"`
	StartLine int       `json:"startLine"`
	EndLine   int       `json:"endLine"`
}

type caseResult struct {
	Nodes        []node          `json:"nodes"`
	Escape       string          `json:"escape"`
	ParseError   string          `json:"parseError,omitempty"`
	ConvertError string          `json:"convertError,omitempty"`
	Config       json.RawMessage `json:"config,omitempty"`
}

type wordResult struct {
	Result string   `json:"result"`
	Words  []string `json:"words"`
	Error  string   `json:"error,omitempty"`
}

func dump(n *parser.Node) node {
	out := node{Keyword: strings.ToLower(n.Value), Flags: n.Flags, Args: []string{}, JSON: n.Attributes["json"], StartLine: n.StartLine, EndLine: n.EndLine, Heredocs: []heredoc{}}
	if out.Flags == nil {
		out.Flags = []string{}
	}
	for next := n.Next; next != nil; next = next.Next {
		if len(next.Children) > 0 {
			child := dump(next.Children[0])
			out.Child = &child
			continue
		}
		out.Args = append(out.Args, next.Value)
	}
	for _, h := range n.Heredocs {
		out.Heredocs = append(out.Heredocs, heredoc{h.Name, h.Content, h.Expand, h.Chomp, h.FileDescriptor})
	}
	return out
}

func main() {
	var in input
	if err := json.NewDecoder(os.Stdin).Decode(&in); err != nil {
		panic(err)
	}
	cases := []caseResult{}
	for _, c := range in.Cases {
		res := caseResult{Nodes: []node{}}
		parsed, err := parser.Parse(bytes.NewReader([]byte(c.Dockerfile)))
		if err == nil {
			res.Escape = string(parsed.EscapeToken)
			for _, child := range parsed.AST.Children {
				res.Nodes = append(res.Nodes, dump(child))
			}
			_, _, err = instructions.Parse(parsed.AST, nil)
		}
		if err != nil {
			res.ParseError = err.Error()
		} else if c.Convert {
			main := llb.Local("context")
			platform := ocispecs.Platform{OS: "linux", Architecture: "amd64"}
			out, err := dockerfile2llb.Dockerfile2LLB(context.Background(), []byte(c.Dockerfile), dockerfile2llb.ConvertOpt{
				Config:         dockerui.Config{BuildArgs: c.BuildArgs, Target: c.Target, TargetPlatforms: []ocispecs.Platform{platform}, BuildPlatforms: []ocispecs.Platform{platform}},
				MainContext:    &main,
				TargetPlatform: &platform,
			})
			if err != nil {
				res.ConvertError = err.Error()
			} else {
				res.Config, _ = json.Marshal(out.Image.Config)
			}
		}
		cases = append(cases, res)
	}
	words := []wordResult{}
	for _, w := range in.Words {
		escape := '\\'
		if w.Escape == "`" {
			escape = '`'
		}
		lex := shell.NewLex(escape)
		env := shell.EnvsFromSlice(w.Env)
		result, _, err := lex.ProcessWord(w.Word, env)
		split, err2 := lex.ProcessWords(w.Word, env)
		r := wordResult{Result: result, Words: split}
		if r.Words == nil {
			r.Words = []string{}
		}
		if err != nil {
			r.Error = err.Error()
		} else if err2 != nil {
			r.Error = err2.Error()
		}
		words = append(words, r)
	}
	matches := []matchResult{}
	for _, m := range in.Matches {
		ok, err := filepath.Match(m.Pattern, m.Name)
		r := matchResult{Match: ok}
		if err != nil {
			r.Error = err.Error()
		}
		matches = append(matches, r)
	}
	ignores := []ignoreResult{}
	for _, ig := range in.Ignores {
		r := ignoreResult{Patterns: []string{}, Excluded: []bool{}}
		patterns, err := ignorefile.ReadAll(strings.NewReader(ig.Text))
		if err == nil {
			r.Patterns = append(r.Patterns, patterns...)
			var pm *patternmatcher.PatternMatcher
			pm, err = patternmatcher.New(patterns)
			for _, p := range ig.Paths {
				if err != nil {
					break
				}
				var excluded bool
				excluded, err = pm.MatchesOrParentMatches(p)
				r.Excluded = append(r.Excluded, excluded)
			}
		}
		if err != nil {
			r.Error = err.Error()
		}
		ignores = append(ignores, r)
	}
	chmods := []chmodResult{}
	for _, c := range in.Chmods {
		r := chmodResult{}
		set, err := mode.ParseWithUmask(c.Mode, 0)
		if err != nil {
			r.Error = err.Error()
		} else {
			perm := os.FileMode(c.Perm & 0o777)
			if c.Perm&0o4000 != 0 {
				perm |= os.ModeSetuid
			}
			if c.Perm&0o2000 != 0 {
				perm |= os.ModeSetgid
			}
			if c.Perm&0o1000 != 0 {
				perm |= os.ModeSticky
			}
			if c.IsDir {
				perm |= os.ModeDir
			}
			out := set.Apply(perm)
			bits := uint32(out.Perm())
			if out&os.ModeSetuid != 0 {
				bits |= 0o4000
			}
			if out&os.ModeSetgid != 0 {
				bits |= 0o2000
			}
			if out&os.ModeSticky != 0 {
				bits |= 0o1000
			}
			r.Perm = bits
		}
		chmods = append(chmods, r)
	}
	copies := []copyResult{}
	for _, c := range in.Copies {
		paths, err := copyExcluding(c.Root, c.Src, c.Exclude)
		r := copyResult{Paths: paths}
		if err != nil {
			r.Error = err.Error()
		}
		copies = append(copies, r)
	}
	if err := json.NewEncoder(os.Stdout).Encode(map[string]any{"cases": cases, "words": words, "matches": matches, "ignores": ignores, "chmods": chmods, "copies": copies}); err != nil {
		panic(err)
	}
}
