package node

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDropInRender(t *testing.T) {
	d := DropIn{Handler: "moat", RuntimePath: "/opt/moat/bin/containerd-shim-moat-v2", OptionsPath: "/etc/moat/runtime.toml", ConfigVersion: 3}
	b, err := d.Render()
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{
		"version = 3\n",
		`[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.moat]`,
		`runtime_type = "io.containerd.moat.v2"`,
		`runtime_path = "/opt/moat/bin/containerd-shim-moat-v2"`,
		`[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.moat.options]`,
		`ConfigPath = "/etc/moat/runtime.toml"`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("drop-in lacks %q:\n%s", want, s)
		}
	}
	d.ConfigVersion = 2
	b, err = d.Render()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.moat]`) || !strings.Contains(string(b), "version = 2\n") {
		t.Errorf("v2 drop-in for containerd 1.7 is wrong:\n%s", b)
	}

	bad := []DropIn{
		{Handler: "Moat", RuntimePath: "/x", ConfigVersion: 3},
		{Handler: "moat]\n[x", RuntimePath: "/x", ConfigVersion: 3},
		{Handler: "moat", RuntimePath: "relative/shim", ConfigVersion: 3},
		{Handler: "moat", RuntimePath: "/x\"\nevil = 1", ConfigVersion: 3},
		{Handler: "moat", RuntimePath: "/x", ConfigVersion: 1},
	}
	for _, d := range bad {
		if _, err := d.Render(); err == nil {
			t.Errorf("Render(%+v) accepted bad input", d)
		}
	}
}

func TestConfigVersionFor(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
		ok   bool
	}{
		{"v2.4.2", 3, true}, {"2.0.0-rc.1", 3, true}, {"v1.7.27", 2, true}, {"1.7.0", 2, true},
		{"v1.6.33", 0, false}, {"garbage", 0, false}, {"", 0, false},
	} {
		got, err := ConfigVersionFor(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ConfigVersionFor(%q) = %d, %v; want %d, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

// Every kind of main config the edit must handle, and a reversal that gives
// back the same bytes.
func TestImportsEditRoundTrip(t *testing.T) {
	const dropIn = "/etc/containerd/conf.d/moat.toml"
	cases := map[string]string{
		"no version":        "# my config\n[plugins.\"io.containerd.cri.v1.runtime\"]\n  enable_selinux = false\n",
		"version":           "version = 3\nroot = \"/var/lib/containerd\"\n\n[grpc]\n  address = \"/run/containerd/containerd.sock\"\n",
		"imports":           "version = 3\nimports = [\"/etc/containerd/other.toml\"]\n[debug]\n  level = \"info\"\n",
		"empty imports":     "version = 2\nimports = []\n",
		"multiline imports": "version = 3\nimports = [\n  \"/a.toml\",\n  \"/b.toml\",\n]\n",
		"no final newline":  "version = 3",
		"v2 old":            "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd]\n  snapshotter = \"overlayfs\"\n",
		"crlf":              "version = 3\r\nroot = \"/var/lib/containerd\"\r\n",
		"table imports key": "version = 3\n[x]\nimports = [\"/not/top/level\"]\n",
	}
	for name, orig := range cases {
		t.Run(name, func(t *testing.T) {
			out, err := addImport("/etc/containerd/config.toml", []byte(orig), true, dropIn, 3)
			if err != nil {
				t.Fatal(err)
			}
			mc, err := parseMainConfig("edited", out)
			if err != nil {
				t.Fatalf("edited config does not parse: %v\n%s", err, out)
			}
			if !importsCover("/etc/containerd/config.toml", mc.Imports, dropIn) {
				t.Fatalf("edited config does not import the drop-in: %v\n%s", mc.Imports, out)
			}
			back, del, found := removeImport(out, dropIn)
			if !found || del {
				t.Fatalf("removeImport found=%v delete=%v", found, del)
			}
			if string(back) != orig {
				t.Fatalf("round trip changed the file:\n--- before\n%q\n--- after\n%q", orig, back)
			}
		})
	}
}

func TestImportsCover(t *testing.T) {
	main := "/etc/containerd/config.toml"
	d := "/etc/containerd/conf.d/moat.toml"
	for _, tc := range []struct {
		imports []string
		want    bool
	}{
		{nil, false},
		{[]string{"/etc/containerd/conf.d/*.toml"}, true},
		{[]string{"conf.d/*.toml"}, true},
		{[]string{"conf.d/moat.toml"}, true},
		{[]string{"/etc/containerd/conf.d/*.conf"}, false},
		{[]string{"/etc/containerd/other.toml"}, false},
	} {
		if got := importsCover(main, tc.imports, d); got != tc.want {
			t.Errorf("importsCover(%v) = %v, want %v", tc.imports, got, tc.want)
		}
	}
}

// Ensure and Remove on files: a missing main config is created and removed
// again; an import glob that covers the drop-in leaves the main config alone.
func TestEnsureRemoveFiles(t *testing.T) {
	d := DropIn{Handler: "moat", RuntimePath: "/opt/moat/bin/containerd-shim-moat-v2", ConfigVersion: 3}
	t.Run("no main config", func(t *testing.T) {
		dir := t.TempDir()
		c := ContainerdConfig{MainPath: filepath.Join(dir, "config.toml"), DropInPath: filepath.Join(dir, "conf.d", "moat.toml")}
		changed, err := c.Ensure(d)
		if err != nil || !changed {
			t.Fatalf("Ensure = %v, %v", changed, err)
		}
		if changed, err := c.Ensure(d); err != nil || changed {
			t.Fatalf("second Ensure = %v, %v; want no change", changed, err)
		}
		if changed, err := c.Remove(); err != nil || !changed {
			t.Fatalf("Remove = %v, %v", changed, err)
		}
		for _, p := range []string{c.MainPath, c.DropInPath} {
			if _, err := os.Stat(p); !os.IsNotExist(err) {
				t.Errorf("%s still exists after Remove (%v)", p, err)
			}
		}
	})
	t.Run("glob import", func(t *testing.T) {
		dir := t.TempDir()
		c := ContainerdConfig{MainPath: filepath.Join(dir, "config.toml"), DropInPath: filepath.Join(dir, "conf.d", "moat.toml")}
		orig := "version = 3\nimports = [\"" + dir + "/conf.d/*.toml\"]\n"
		if err := os.WriteFile(c.MainPath, []byte(orig), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Ensure(d); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Remove(); err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(c.MainPath)
		st, _ := os.Stat(c.MainPath)
		if string(got) != orig || st.Mode().Perm() != 0o600 {
			t.Fatalf("main config changed: %q mode %v", got, st.Mode())
		}
	})
	t.Run("version 1 refused", func(t *testing.T) {
		dir := t.TempDir()
		c := ContainerdConfig{MainPath: filepath.Join(dir, "config.toml"), DropInPath: filepath.Join(dir, "moat.toml")}
		os.WriteFile(c.MainPath, []byte("version = 1\n"), 0o644)
		if _, err := c.Ensure(d); err == nil || !strings.Contains(err.Error(), "containerd config migrate") {
			t.Fatalf("Ensure on a v1 config: %v", err)
		}
	})
	t.Run("symlinked config refused", func(t *testing.T) {
		dir := t.TempDir()
		real := filepath.Join(dir, "real.toml")
		os.WriteFile(real, []byte("version = 3\n"), 0o644)
		c := ContainerdConfig{MainPath: filepath.Join(dir, "config.toml"), DropInPath: filepath.Join(dir, "moat.toml")}
		os.Symlink(real, c.MainPath)
		if _, err := c.Ensure(d); err == nil || !strings.Contains(err.Error(), "symbolic link") {
			t.Fatalf("Ensure on a symlink: %v", err)
		}
		if _, err := os.Stat(c.DropInPath); !os.IsNotExist(err) {
			t.Fatal("a refused Ensure wrote the drop-in")
		}
		if b, _ := os.ReadFile(real); string(b) != "version = 3\n" {
			t.Fatalf("link target changed: %q", b)
		}
	})
	t.Run("broken toml refused", func(t *testing.T) {
		dir := t.TempDir()
		c := ContainerdConfig{MainPath: filepath.Join(dir, "config.toml"), DropInPath: filepath.Join(dir, "moat.toml")}
		os.WriteFile(c.MainPath, []byte("version = = 3\n"), 0o644)
		if _, err := c.Ensure(d); err == nil || !strings.Contains(err.Error(), c.MainPath) {
			t.Fatalf("Ensure on broken TOML: %v", err)
		}
		if _, err := os.Stat(c.DropInPath); !os.IsNotExist(err) {
			t.Fatal("a refused Ensure wrote the drop-in")
		}
	})
}

// For containerd 1.7 the runtime goes into the main config between marker
// lines; removing it gives the file back byte for byte, whatever its end.
func TestInlineRoundTrip(t *testing.T) {
	d := DropIn{Handler: "moat", RuntimePath: "/opt/moat/bin/containerd-shim-moat-v2", OptionsPath: "/etc/moat/runtime.toml", ConfigVersion: 2}
	full := "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc]\n  runtime_type = \"io.containerd.runc.v2\""
	for name, orig := range map[string]string{"final newline": full + "\n", "no final newline": full, "crlf": strings.ReplaceAll(full, "\n", "\r\n") + "\r\n"} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			c := ContainerdConfig{MainPath: filepath.Join(dir, "config.toml"), DropInPath: filepath.Join(dir, "conf.d", "moat.toml")}
			os.WriteFile(c.MainPath, []byte(orig), 0o640)
			if changed, err := c.Ensure(d); err != nil || !changed {
				t.Fatalf("Ensure: %v %v", changed, err)
			}
			if changed, err := c.Ensure(d); err != nil || changed {
				t.Fatalf("second Ensure: %v %v", changed, err)
			}
			// New options replace the block rather than adding a second.
			d2 := d
			d2.OptionsPath = ""
			if changed, err := c.Ensure(d2); err != nil || !changed {
				t.Fatalf("Ensure with other options: %v %v", changed, err)
			}
			b, _ := os.ReadFile(c.MainPath)
			if strings.Count(string(b), "BEGIN moat-node") != 1 {
				t.Fatalf("blocks:\n%s", b)
			}
			if changed, err := c.Remove(); err != nil || !changed {
				t.Fatalf("Remove: %v %v", changed, err)
			}
			b, _ = os.ReadFile(c.MainPath)
			st, _ := os.Stat(c.MainPath)
			if string(b) != orig || st.Mode().Perm() != 0o640 {
				t.Fatalf("not restored: %q (mode %v)", b, st.Mode())
			}
		})
	}
	t.Run("own moat runtime refused", func(t *testing.T) {
		dir := t.TempDir()
		c := ContainerdConfig{MainPath: filepath.Join(dir, "config.toml"), DropInPath: filepath.Join(dir, "moat.toml")}
		own := full + "\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.moat]\n  runtime_type = \"x\"\n"
		os.WriteFile(c.MainPath, []byte(own), 0o644)
		if _, err := c.Ensure(d); err == nil || !strings.Contains(err.Error(), "already defines") {
			t.Fatalf("Ensure: %v", err)
		}
	})
	t.Run("no config refused", func(t *testing.T) {
		dir := t.TempDir()
		c := ContainerdConfig{MainPath: filepath.Join(dir, "config.toml"), DropInPath: filepath.Join(dir, "moat.toml")}
		if _, err := c.Ensure(d); err == nil || !strings.Contains(err.Error(), "containerd config default") {
			t.Fatalf("Ensure: %v", err)
		}
		if _, err := os.Stat(c.MainPath); !os.IsNotExist(err) {
			t.Fatal("a config was created")
		}
	})
}
