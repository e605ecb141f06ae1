package intel

import (
	"slices"
	"strings"
	"testing"
)

func TestDetector(t *testing.T) {
	for _, name := range DetectorNames {
		d, err := Detector(name)
		if err != nil {
			t.Fatalf("Detector(%q): %v", name, err)
		}
		if d.Name() != name {
			t.Errorf("Detector(%q).Name() = %q", name, d.Name())
		}
	}
	if len(detectors) != len(DetectorNames) || !slices.IsSorted(DetectorNames) {
		t.Errorf("DetectorNames %v do not match the %d detectors, sorted", DetectorNames, len(detectors))
	}

	_, err := Detector("bayes")
	if err == nil || !strings.Contains(err.Error(), `unknown detector "bayes": use one of dga, tunnel`) {
		t.Errorf(`Detector("bayes") error = %v, want one naming the valid detectors`, err)
	}
}
