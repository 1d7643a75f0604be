"""Files swinref writes and reads: golden files, weights files, image-set stores."""
