//! Finding V4L2 nodes by what VIDIOC_QUERYCAP says (H1 fills this in).
