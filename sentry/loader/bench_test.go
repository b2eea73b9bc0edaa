package loader

import (
	"os"
	"testing"

	"moat.dev/moat/sentry/abi"
)

func BenchmarkParse(b *testing.B) {
	path := realBinaries[0].path(b)
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(f, st.Size()); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBuildStack(b *testing.B) {
	args := testStackArgs()
	for i := 0; i < 30; i++ {
		args.Envv = append(args.Envv, "VARIABLE_NUMBER=some value of moderate length")
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := BuildStack(abi.PageSize*1000, args); err != nil {
			b.Fatal(err)
		}
	}
}
