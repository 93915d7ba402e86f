package spmtrain

import (
	"sort"
	"sync"
)

//go:generate /usr/bin/python3 testdata/gen_scripts.py /tmp/unicode_script_map.h /tmp/unicode_script.h

// scriptID numbers a Unicode script as the reference's ScriptType enum does.
type scriptID uint8

// scriptRange assigns script to the code points first..last.
type scriptRange struct {
	first, last rune
	script      scriptID
}

// bmpScripts is the script of every code point below U+10000, built from
// scriptRanges on first use; higher code points are looked up by search.
var bmpScripts = sync.OnceValue(func() *[0x10000]scriptID {
	var t [0x10000]scriptID
	for i := range t {
		t[i] = scriptCommon
	}
	for _, r := range scriptRanges {
		for c := r.first; c <= r.last && c < 0x10000; c++ {
			t[c] = r.script
		}
	}
	return &t
})

// scriptOf returns the script of c in SentencePiece 0.1.97's table
// (Unicode 9.0; code points it does not list are Common).
func scriptOf(c rune) scriptID {
	if c >= 0 && c < 0x10000 {
		return bmpScripts()[c]
	}
	i := sort.Search(len(scriptRanges), func(i int) bool { return scriptRanges[i].last >= c })
	if i < len(scriptRanges) && scriptRanges[i].first <= c {
		return scriptRanges[i].script
	}
	return scriptCommon
}
