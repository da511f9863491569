// Package contentsig makes and checks the content signatures of Remote
// Settings collections: the canonical serialization of a collection's
// records, the signers (a local ECDSA P-384 key, an Autograph server) and
// the verification of what they sign.
package contentsig

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ErrNotCanonical is returned for a value that has no canonical form: a
// number beyond 64-bit integers, a float that is not finite, a type that
// JSON has not.
var ErrNotCanonical = errors.New("no canonical JSON form")

// Canonical appends the canonical JSON of v to dst, byte for byte as
// canonicaljson-rs (the serializer of Remote Settings and of its clients)
// writes it: object keys sorted by code point, no spaces, strings with
// every non-ASCII character (and DEL) escaped as \uXXXX (surrogate pairs
// beyond the BMP), integers as written, other numbers as a shortest
// mantissa and exponent (1.5E0, 1E-7).
//
// v holds what encoding/json decodes (map[string]any, []any, string,
// bool, nil, float64, or json.Number with UseNumber); a json.Number is an
// integer when it has no fraction or exponent, as Python's json reads it.
func Canonical(dst []byte, v any) ([]byte, error) {
	switch t := v.(type) {
	case nil:
		return append(dst, "null"...), nil
	case bool:
		return strconv.AppendBool(dst, t), nil
	case string:
		return appendString(dst, t), nil
	case json.Number:
		return appendNumber(dst, string(t))
	case float64:
		return appendFloat(dst, t)
	case int:
		return strconv.AppendInt(dst, int64(t), 10), nil
	case int64:
		return strconv.AppendInt(dst, t, 10), nil
	case []any:
		dst = append(dst, '[')
		for i, e := range t {
			if i > 0 {
				dst = append(dst, ',')
			}
			var err error
			if dst, err = Canonical(dst, e); err != nil {
				return dst, err
			}
		}
		return append(dst, ']'), nil
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		// Byte order of UTF-8 is code point order, canonicaljson-rs's.
		sort.Strings(keys)
		dst = append(dst, '{')
		for i, k := range keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, k)
			dst = append(dst, ':')
			var err error
			if dst, err = Canonical(dst, t[k]); err != nil {
				return dst, err
			}
		}
		return append(dst, '}'), nil
	}
	return dst, fmt.Errorf("%w: %T", ErrNotCanonical, v)
}

// IsFloat reports whether a JSON number is what Python's json reads as a
// float (it has a fraction or an exponent): Remote Settings refuses them
// in signed collections unless signer.allow_floats is set.
func IsFloat(n json.Number) bool { return strings.ContainsAny(string(n), ".eE") }

func appendNumber(dst []byte, n string) ([]byte, error) {
	if !IsFloat(json.Number(n)) {
		// Python's ints, which canonicaljson-rs takes within 64 bits
		// (signed or unsigned). "-0" is the integer 0.
		if i, err := strconv.ParseInt(n, 10, 64); err == nil {
			return strconv.AppendInt(dst, i, 10), nil
		}
		if u, err := strconv.ParseUint(n, 10, 64); err == nil {
			return strconv.AppendUint(dst, u, 10), nil
		}
		return dst, fmt.Errorf("%w: integer %s is beyond 64 bits", ErrNotCanonical, n)
	}
	f, err := strconv.ParseFloat(n, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return dst, fmt.Errorf("%w: %q is not a number", ErrNotCanonical, n)
	}
	return appendFloat(dst, f)
}

// appendFloat writes the shortest decimal that reads back as f, as
// mantissa and exponent: 1.5E0, 1E20, -2.5E-5, -0E0 (Rust's {:e}, which
// canonicaljson-rs normalizes so).
func appendFloat(dst []byte, f float64) ([]byte, error) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return dst, fmt.Errorf("%w: %v", ErrNotCanonical, f)
	}
	digits, exp := shortestDigits(f)
	if f < 0 || (f == 0 && math.Signbit(f)) {
		dst = append(dst, '-')
	}
	dst = append(dst, digits[0])
	if len(digits) > 1 {
		dst = append(dst, '.')
		dst = append(dst, digits[1:]...)
	}
	dst = append(dst, 'E')
	return strconv.AppendInt(dst, int64(exp), 10), nil
}

// shortestDigits returns the shortest significant digits that read back
// as |f| (no trailing zeros) and the decimal exponent of the first one.
// Where two such decimals are exactly as close to f, Go picks the even
// one and Rust's formatting (hence the signatures) the larger one: that
// one is returned.
func shortestDigits(f float64) ([]byte, int) {
	f = math.Abs(f)
	digits, exp := splitE(strconv.AppendFloat(nil, f, 'e', -1, 64))
	// A tie: the exact value of f has one digit more, a 5.
	exact, _ := splitE(strconv.AppendFloat(nil, f, 'e', 767, 64))
	exact = bytes.TrimRight(exact, "0")
	n := len(digits)
	if len(exact) != n+1 || exact[n] != '5' || !bytes.Equal(exact[:n], digits) {
		return digits, exp
	}
	up := append([]byte(nil), digits...)
	i := n - 1
	for ; i >= 0 && up[i] == '9'; i-- {
		up[i] = '0'
	}
	if i < 0 {
		up = append([]byte{'1'}, up...)
		exp++
	} else {
		up[i]++
	}
	up = bytes.TrimRight(up, "0")
	if len(up) == 0 {
		up = []byte{'0'}
	}
	return up, exp
}

// splitE splits Go's "d.ddde±xx" into its digits (without the point)
// and exponent.
func splitE(s []byte) ([]byte, int) {
	e := bytes.IndexByte(s, 'e')
	exp, _ := strconv.Atoi(string(s[e+1:]))
	mant := s[:e]
	digits := make([]byte, 0, len(mant))
	for _, c := range mant {
		if c != '.' {
			digits = append(digits, c)
		}
	}
	return digits, exp
}

const hexDigits = "0123456789abcdef"

func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			i++
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				if c < 0x20 || c == 0x7f {
					dst = appendU(dst, rune(c))
				} else {
					dst = append(dst, c)
				}
			}
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		if r > 0xffff {
			r -= 0x10000
			dst = appendU(dst, 0xd800+(r>>10))
			dst = appendU(dst, 0xdc00+(r&0x3ff))
		} else {
			dst = appendU(dst, r)
		}
	}
	return append(dst, '"')
}

func appendU(dst []byte, r rune) []byte {
	return append(dst, '\\', 'u', hexDigits[r>>12&0xf], hexDigits[r>>8&0xf], hexDigits[r>>4&0xf], hexDigits[r&0xf])
}

// Collection returns what is signed for a collection (the reference's
// serializer.canonical_json): {"data": the live records sorted by id,
// "last_modified": the records timestamp as a string}, canonical.
// Tombstones (deleted: true) are left out.
func Collection(records []map[string]any, timestamp int64) ([]byte, error) {
	live := make([]any, 0, len(records))
	for _, r := range records {
		if d, _ := r["deleted"].(bool); d {
			continue
		}
		live = append(live, r)
	}
	sort.SliceStable(live, func(i, j int) bool {
		a, _ := live[i].(map[string]any)["id"].(string)
		b, _ := live[j].(map[string]any)["id"].(string)
		return a < b
	})
	return Canonical(nil, map[string]any{"data": live, "last_modified": strconv.FormatInt(timestamp, 10)})
}
