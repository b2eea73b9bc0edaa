package control

// InstallSeccomp is installSeccomp, for the tests.
var InstallSeccomp = installSeccomp
