// Package intel gives access by name to the threat detectors of its
// subpackages, so that the resolver and "bulwark intel score" build the
// same models with the same thresholds. The subpackages hold the models:
// dga scores registered-domain labels, tunnel scores query names and the
// traffic of each domain.
package intel

import (
	"fmt"
	"strings"
	"sync"

	"bulwark/internal/intel/detect"
	"bulwark/internal/intel/dga"
	"bulwark/internal/intel/tunnel"
)

// detectors maps each detector name to its constructor.
var detectors = map[string]func() detect.Detector{
	"dga":    func() detect.Detector { return defaultDGA() },
	"tunnel": func() detect.Detector { return tunnel.Names{} },
}

// defaultDGA decodes the embedded DGA model once.
var defaultDGA = sync.OnceValue(dga.Default)

// DetectorNames lists the names Detector takes, sorted.
var DetectorNames = []string{"dga", "tunnel"}

// Detector returns the single-name detector called name, with the model
// and threshold built into the binary. An unknown name is an error that
// lists the valid ones.
func Detector(name string) (detect.Detector, error) {
	newDetector, ok := detectors[name]
	if !ok {
		return nil, fmt.Errorf("unknown detector %q: use one of %s", name, strings.Join(DetectorNames, ", "))
	}
	return newDetector(), nil
}
