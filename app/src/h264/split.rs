//! Annex-B byte stream -> NAL units. SKELETON: written by the H.264 work item.
