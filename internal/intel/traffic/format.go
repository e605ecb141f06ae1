package traffic

import "strconv"

func itoa(v uint64) string { return strconv.FormatUint(v, 10) }

func ftoa(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
