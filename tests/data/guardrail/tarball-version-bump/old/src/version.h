#define VERSION "1.0.0"
