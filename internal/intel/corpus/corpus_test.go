package corpus

import (
	"path/filepath"
	"testing"
)

const dataDir = "../../../lab/data"

// The split must not change between releases, or a retrained model
// would be measured on names it was trained on.
func TestPartOfStable(t *testing.T) {
	tests := []struct {
		label string
		want  Part
	}{
		{"google", PartTrain},
		{"GOOGLE", PartTrain},
		{"wikipedia", PartTrain},
		{"bbc", PartFit},
		{"yahoo", PartFit},
		{"facebook", PartTest},
	}
	for _, tt := range tests {
		if got := PartOf(tt.label); got != tt.want {
			t.Errorf("PartOf(%q) = %v, want %v", tt.label, got, tt.want)
		}
	}

	counts := map[Part]int{}
	for i := range 10000 {
		counts[PartOf(string(rune('a'+i%26))+string(rune('a'+i/26%26))+string(rune('a'+i/676)))]++
	}
	for p, share := range map[Part]float64{PartTrain: 0.6, PartFit: 0.2, PartTest: 0.2} {
		if got := float64(counts[p]) / 10000; got < share-0.03 || got > share+0.03 {
			t.Errorf("part %d holds %.3f of 10,000 labels, want about %.1f", p, got, share)
		}
	}
}

func TestDataFiles(t *testing.T) {
	popular, err := Popular(filepath.Join(dataDir, "popular.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if len(popular) != 9997 || popular[0] != "google.com" {
		t.Errorf("Popular: %d names starting with %q, want 9997 starting with google.com", len(popular), popular[0])
	}

	dga, err := DGA(filepath.Join(dataDir, "intel", "andrewaeva-dga-8families.csv"))
	if err != nil {
		t.Fatal(err)
	}
	families := map[string]int{}
	for _, s := range dga {
		families[s.Class]++
	}
	if len(dga) != 8000 || len(families) != 8 || families["matsnu"] != 1000 {
		t.Errorf("DGA: %d names in families %v, want 8000 in 8 families of 1000", len(dga), families)
	}

	for file, want := range map[string]int{"360netlab-chinad-examples.txt": 1000, "360netlab-vidro-examples.txt": 100} {
		s, err := Lines(filepath.Join(dataDir, "intel", file), "x")
		if err != nil {
			t.Fatal(err)
		}
		if len(s) != want {
			t.Errorf("Lines(%s) = %d names, want %d", file, len(s), want)
		}
	}

	tunnel, err := Tunnelling(filepath.Join(dataDir, "intel", "dns-tunneling-queries-dev.csv.gz"))
	if err != nil {
		t.Fatal(err)
	}
	classes := map[string]int{}
	for _, s := range tunnel {
		classes[s.Class]++
	}
	want := map[string]int{"tuns": 12622, "dnscapy": 2751, "iodine": 1224, "dns2tcp": 907, "plain": 1709}
	for c, n := range want {
		if classes[c] != n {
			t.Errorf("Tunnelling: class %s has %d rows, want %d", c, classes[c], n)
		}
	}
	if len(classes) != len(want) {
		t.Errorf("Tunnelling: classes %v, want %v", classes, want)
	}
}
