// The guests in Guests/guests.list, built from source by the GuestBuilder
// plugin; each one becomes a static on GuestImage (generated files). The type
// itself lives in the KVMGuestImage module (the plugin's generated files, in
// this package and in users' packages, import it); this module re-exports it.
@_exported import KVMGuestImage
