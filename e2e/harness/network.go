package harness

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// PodSubnet is the subnet of pod addresses on the test bridge. The bridge
// itself has no address and no route on the host (isGateway false, no
// masquerade), so pods reach only each other and their own loopback, and
// the host's forwarding and firewall settings stay as they were.
const PodSubnet = "10.213.0.0/24"

// setupNetwork creates the test bridge (down to up) and writes the CNI
// network list containerd loads: bridge with host-local IPAM kept under
// the state folder.
func (e *Env) setupNetwork() error {
	if err := e.ip("link", "add", "name", e.Bridge, "type", "bridge"); err != nil {
		return err
	}
	if err := e.ip("link", "set", e.Bridge, "up"); err != nil {
		return err
	}
	conf := map[string]any{
		"cniVersion": "1.0.0",
		"name":       "moat-e2e",
		"plugins": []any{
			map[string]any{
				"type":        "bridge",
				"bridge":      e.Bridge,
				"isGateway":   false,
				"ipMasq":      false,
				"hairpinMode": false,
				"ipam": map[string]any{
					"type":    "host-local",
					"ranges":  [][]map[string]string{{{"subnet": PodSubnet}}},
					"dataDir": filepath.Join(e.State, "cni", "ipam"),
				},
			},
		},
	}
	b, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		return fmt.Errorf("encode CNI config: %w", err)
	}
	dir := filepath.Join(e.State, "cni", "net.d")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	p := filepath.Join(dir, "10-moat-e2e.conflist")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		return fmt.Errorf("write CNI config %s: %w", p, err)
	}
	return nil
}

// ip runs iproute2's ip with args.
func (e *Env) ip(args ...string) error {
	return runIP(e.Tools.IP, args...)
}

func runIP(bin string, args ...string) error {
	if bin == "" {
		bin = "ip"
	}
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// BridgePorts lists the interfaces attached to the test bridge (one veth
// per running pod).
func (e *Env) BridgePorts() ([]string, error) {
	p := filepath.Join("/sys/class/net", e.Bridge, "brif")
	ents, err := os.ReadDir(p)
	if err != nil {
		return nil, fmt.Errorf("list bridge ports %s: %w", p, err)
	}
	var names []string
	for _, d := range ents {
		names = append(names, d.Name())
	}
	return names, nil
}
