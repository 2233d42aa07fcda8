#define VERSION "1.0.1"
